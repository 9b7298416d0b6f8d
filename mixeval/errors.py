"""The one exception type of :mod:`mixeval`: bad input or a failed precondition, told in one line."""


class MixevalError(Exception):
    """A user-facing evaluation error; the CLI prints it on one line and exits with status 1."""
