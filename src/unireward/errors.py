"""Exceptions raised by unireward. Each names the file, field or request at fault and what to do."""


class UnirewardError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(UnirewardError, ValueError):
    """A config file, preset, option or field is wrong."""


class TaskError(UnirewardError, KeyError):
    """Unknown task name or a request missing an input the task needs."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class MediaError(UnirewardError, ValueError):
    """An image or video could not be used. `path` names the source when there is one."""

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class MediaMissingError(MediaError, FileNotFoundError):
    pass


class MediaEmptyError(MediaError):
    pass


class MediaCorruptError(MediaError):
    pass


class MediaTooLargeError(MediaError):
    pass


class UnsupportedMediaError(MediaError):
    pass


class MediaRefusedError(MediaError, PermissionError):
    """Media refused by policy, whatever its contents: a file outside the allowed roots, a playlist or concat list
    (a file naming other files), a redirect to another origin. Servers answer it with HTTP 403."""


class PromptTooLongError(UnirewardError, ValueError):
    pass


class BackendError(UnirewardError, RuntimeError):
    """The model backend (in process or over HTTP) failed for a request."""


class DataError(UnirewardError, ValueError):
    """A dataset row or record is malformed; the message names the file and row."""
