"""TensorRT shapes and data types as plain Python: pure, so they are tested without TensorRT."""

from __future__ import annotations

from typing import Protocol

# DataType member names -> numpy dtype names. INT64 exists from TensorRT 10.0, BF16 from 9.0.
NUMPY_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "BOOL": "bool",
}


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _Sized(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> int: ...


def numpy_dtype(dtype: _Named) -> str:
    """The numpy name of a tensorrt.DataType; I/O tensors of segdeploy graphs use only these."""
    if dtype.name not in NUMPY_DTYPES:
        raise ValueError(f"TensorRT data type {dtype.name} has no numpy equivalent for an I/O tensor")
    return NUMPY_DTYPES[dtype.name]


def dims_list(dims: _Sized) -> list[int]:
    """A tensorrt.Dims as a list (-1 marks a dynamic dimension)."""
    return [int(dims[i]) for i in range(len(dims))]
