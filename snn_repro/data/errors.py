"""Errors the data layer raises; the entry point turns them into one line and a non-zero exit."""


class DatasetNotFound(FileNotFoundError):
    """A dataset directory or file is missing. The message says what to put where and where it is published."""


class CorruptFile(ValueError):
    """A data file could not be parsed; the message names the file."""


class DatasetUnreadable(PermissionError):
    """A dataset folder or file exists but this user may not read it (not the same as missing)."""
