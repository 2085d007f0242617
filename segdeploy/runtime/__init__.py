"""The embeddable runtime: numpy and Pillow, plus TensorRT and a CUDA binding (cuda-bindings or pycuda)
for engines or ONNX Runtime for ONNX models. It never imports torch. Three lines in a robot's code:

    from segdeploy.runtime import Segmenter
    segment = Segmenter("exports/unet-cwfid/model.fp16.plan")
    classes = segment(frame)  # HxWx3 uint8 RGB -> HxW int32 class map (channels="bgr" for OpenCV frames)

Images larger than the model takes (orthomosaics) go through `segment.segment_large(reader, writer)`:
tiled, blended, written band by band (runtime/tiling.py).
"""

from .segmenter import Segmenter
from .tiling import ArrayReader, ArrayWriter, BandWriter, TileReader

__all__ = ["ArrayReader", "ArrayWriter", "BandWriter", "Segmenter", "TileReader"]
