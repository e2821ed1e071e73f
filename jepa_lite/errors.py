"""Errors the user can fix, and how the console script reports every other one.

A :class:`UsageError` (or a missing or existing file that a path named) names the problem and
the fix; the console script prints its message alone, as it does for a write the machine
refused (a full or read-only disk) and for memory exhausted on the device or the host
(:func:`user_message`). Anything else, a plain ValueError included (a bug), keeps its
traceback, followed by one line of :func:`hint`. ``JEPA_LITE_TRACEBACK=1`` keeps the
traceback of user errors too (``cli.main`` re-raises them).
"""

import errno
import os

TRACEBACK_VARIABLE = "JEPA_LITE_TRACEBACK"


class UsageError(ValueError):
    """A value, run, device or folder that is not as asked: the message says what to do. A
    ValueError, so that callers that catch a bad value catch it too."""


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
USER_ERRORS = (UsageError, FileNotFoundError, FileExistsError, NotADirectoryError,
               PermissionError)

# what the machine refuses: a full disk, a read-only or foreign folder
WRITE_ERRORS = {errno.ENOSPC: ("no space is left on its device", "free some space"),
                errno.EDQUOT: ("the disk quota is used up", "free some space"),
                errno.EROFS: ("its file system is read-only", "choose a writable folder"),
                errno.EACCES: ("there is no permission to write there",
                               "choose a folder you may write to"),
                errno.EPERM: ("the operation is not permitted there",
                              "choose a folder you may write to")}
OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "not enough memory")


def cannot_write(path, error: OSError) -> UsageError:
    """One line for a write the machine refused: the path, why, and what to do (the files
    written before stay as they were)."""
    reason, fix = WRITE_ERRORS.get(error.errno, (error.strerror or str(error),
                                                 "check that folder"))
    return UsageError(f"cannot write {path}: {reason}: {fix}, or choose another --out")


def out_of_memory(error: BaseException) -> bool:
    return any(words in str(error).lower() for words in OUT_OF_MEMORY)


def user_message(error: BaseException) -> str | None:
    """The one line a user error is reported in (bad input, a full or read-only disk, the
    memory of the device or the host exhausted), or None for a bug, which keeps its
    traceback."""
    if isinstance(error, OSError) and error.errno in WRITE_ERRORS:
        return str(cannot_write(error.filename or "a file", error))
    if isinstance(error, USER_ERRORS):
        return str(error)
    if out_of_memory(error):
        first = str(error).strip().splitlines()[0][:160]
        return (f"the device ran out of memory ({first}): lower --micro-batch (the batch "
                f"stays the same, split into more forward passes), --batch-size or "
                f"--image-size")
    return None


def keep_tracebacks() -> bool:
    """Whether ``JEPA_LITE_TRACEBACK`` asks for the traceback of user errors too."""
    return os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0")


def hint(error: BaseException) -> str:
    """One line after a traceback: where to report it."""
    return ("unexpected error (traceback above); please report it with the command you ran: "
            "https://github.com/jepa-lite/jepa_lite/issues")
