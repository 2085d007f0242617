"""The embeddable runtime: numpy and Pillow, plus TensorRT and a CUDA binding (cuda-bindings or pycuda)
for engines or ONNX Runtime for ONNX models. It never imports torch. Three lines in a robot's code:

    from segdeploy.runtime import Segmenter
    segment = Segmenter("exports/unet-cwfid/model.fp16.plan")
    classes = segment(frame)  # HxWx3 uint8 RGB -> HxW int32 class map (channels="bgr" for OpenCV frames)
"""

from .segmenter import Segmenter

__all__ = ["Segmenter"]
