"""User-facing errors.

Every problem a user can cause (bad file, bad option, unsuitable data) raises
:class:`ZaugError` with one sentence that says what is wrong and what to do.
The command line prints that sentence and exits non-zero, never a traceback.
"""


class ZaugError(Exception):
    """A problem with the user's input or options, explained in one sentence."""


class InputError(ZaugError):
    """The input data or file cannot be used."""


class OutputError(ZaugError):
    """The output cannot be written (exists, same as the input, ...)."""


class ZaugWarning(UserWarning):
    """Something the user should know about a prediction."""
