"""The one exception type of :mod:`mixfx`: bad input or a failed precondition, told in one line."""


class MixfxError(Exception):
    """A user-facing error: the message names the file or value and what is allowed.

    The CLI prints the message on one line and exits with status 1; any other exception
    is a bug and keeps its traceback.
    """
