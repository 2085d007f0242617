# Type stubs for the part of pycuda segdeploy uses (pycuda ships none; checked against pycuda 2026.1's
# src/wrapper/wrap_cudadrv.cpp and pycuda/driver.py).
