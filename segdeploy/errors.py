"""The one exception type users see: a one-line message, no traceback."""


class SegdeployError(Exception):
    """A problem with the user's input or environment, reported as one line by the CLI."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class CaptureError(SegdeployError):
    """A CUDA-graph capture that failed or was invalidated; callers fall back to plain launches."""


class ReportedElsewhere(SegdeployError):
    """A failure another process of the same distributed run has already reported: exit, print nothing."""
