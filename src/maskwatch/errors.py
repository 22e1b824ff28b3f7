"""Typed exceptions. The library raises these; only the CLI prints them."""


class MaskwatchError(Exception):
    """Base class of every error maskwatch raises on purpose."""


class ImageReadError(MaskwatchError, ValueError):
    """An input could not be read as an image (missing, empty, truncated, not an image)."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the configured limit and cannot be downscaled on decode."""


class MissingExtraError(MaskwatchError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


class ModelNotFoundError(MaskwatchError, FileNotFoundError):
    """A model file is neither cached nor downloadable."""


class ChecksumError(MaskwatchError):
    """A downloaded or supplied model file does not have the expected sha256."""


class ModelSpecError(MaskwatchError, ValueError):
    """A model file lacks, or has an invalid, maskwatch spec in its metadata."""


class UnknownNameError(MaskwatchError, KeyError):
    """A detector, model or backbone name is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
