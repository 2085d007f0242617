"""segdeploy: semantic segmentation from training to TensorRT, with parity checks at every step."""

__version__ = "0.1.0"
