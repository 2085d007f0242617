"""`python -m segdeploy` and `torchrun --nproc-per-node N -m segdeploy train ...`: the command line."""

from .cli import app

app(prog_name="segdeploy")
