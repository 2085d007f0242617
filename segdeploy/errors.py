"""The one exception type users see: a one-line message, no traceback."""


class SegdeployError(Exception):
    """A problem with the user's input or environment, reported as one line by the CLI."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SegdeployWarning(UserWarning):
    """Something wrong that does not stop the command (a train/val overlap): one 'warning:' line in the
    CLI; from Python a warning like any other (`warnings.filterwarnings` silences it)."""


class CaptureError(SegdeployError):
    """A CUDA-graph capture that failed or was invalidated; callers fall back to plain launches."""


class ReportedElsewhere(SegdeployError):
    """A failure another process of the same distributed run has already reported: exit, print nothing."""
