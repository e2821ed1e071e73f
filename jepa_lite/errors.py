"""Errors the user can fix, and how the console script reports every other one.

A :class:`UsageError` (or a ValueError, a missing file, ...) names the problem and the fix;
the console script prints its message alone. Anything else (a CUDA out-of-memory, a shape
bug) keeps its traceback, followed by one line of :func:`hint`.
"""


class UsageError(RuntimeError):
    """A run, device or folder that is not as asked: the message says what to do."""


class ImageError(UsageError):
    """An image file that cannot be decoded; the message names the file and the fix. Raised
    in a data-loader worker, it reaches the training process as the same class with the
    worker's traceback as its message (torch's ExceptionWrapper): only the last line, the
    original message, is kept, so the console still says one line."""

    def __init__(self, message: str):
        if message.startswith("Caught "):
            last = [line for line in message.splitlines() if line.strip()][-1]
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)


# what bad input raises: printed as one line; everything else keeps its traceback
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               PermissionError, UsageError)


def hint(error: BaseException) -> str:
    """One line after a traceback: what to try for an out-of-memory, else where to report."""
    if "out of memory" in str(error).lower():
        return ("the device ran out of memory: lower --micro-batch (the batch stays the "
                "same, split into more forward passes) or --batch-size")
    return ("unexpected error (traceback above); please report it with the command you ran: "
            "https://github.com/jepa-lite/jepa_lite/issues")
