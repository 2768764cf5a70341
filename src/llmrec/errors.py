"""Errors a user can cause and fix.

Everything raised as an :class:`LlmrecError` is a user's mistake or an environment problem
(missing file, bad column, unknown option). The CLI prints its message as one line and exits
non-zero; anything else is a bug and keeps its traceback.
"""


class LlmrecError(Exception):
    """A problem the user can fix; the message names the file, field or value."""


class DataError(LlmrecError):
    """Input data is missing, malformed or fails verification."""


class ConfigError(LlmrecError):
    """A configuration value or option is unknown or invalid."""


class UnknownUserError(LlmrecError, KeyError):
    """A user id that is not in the data."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""
