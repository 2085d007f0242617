"""What segdeploy writes beside its models: the export manifest and the metadata stamped into ONNX files.

Reads manifests without importing onnx (only the functions that describe an ONNX file import it)."""
