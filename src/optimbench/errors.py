"""The project's errors, one class per kind of user-facing failure, at the bottom of the import graph so
that every layer can raise them (and `python -m` entry points catch the same class)."""


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key, the value and the fix."""


class DataError(RuntimeError):
    """The data could not be obtained or read; the message says what to do."""
