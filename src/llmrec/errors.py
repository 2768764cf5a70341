"""Errors a user can cause and fix.

Everything raised as an :class:`LlmrecError` is a user's mistake or an environment problem
(missing file, bad column, unknown option). The CLI prints its message as one line and exits
non-zero; anything else is a bug and keeps its traceback.
"""


class LlmrecError(Exception):
    """A problem the user can fix; the message names the file, field or value."""


class DataError(LlmrecError):
    """Input data is missing, malformed or fails verification."""


class CorruptFileError(DataError):
    """A file llmrec wrote earlier (a checkpoint, model, array, JSON, TOML or SQLite store)
    that cannot be read back: truncated, overwritten or garbled. The message names the file
    and the way out (``--force`` to rebuild it, or which file to delete)."""


class ConfigError(LlmrecError):
    """A configuration value or option is unknown or invalid."""


class UnknownUserError(LlmrecError, KeyError):
    """A user id that is not in the data."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""
