"""Precision decided in the ONNX graph: calibration sets, FP16 conversion, INT8 Q/DQ with an accuracy guard."""
