"""Export to ONNX: the deployable graph, its validation against PyTorch, and the manifest."""
