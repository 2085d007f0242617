"""Data sets described by YAML: image/mask pairing, mask encodings, splits, classes."""
