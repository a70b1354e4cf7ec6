"""Error types: each carries a message a user can act on, and an exit code."""

from __future__ import annotations


class PaddlexFeatError(Exception):
    """A failure the user can fix; the CLI reports it without a traceback and exits 1."""

    exit_code = 1

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}  # extra keys for the failure result file


class UsageError(PaddlexFeatError):
    """Bad command line or config: exit 2, as argparse does."""

    exit_code = 2


class ConfigError(UsageError):
    """A config key, type or value is wrong."""


class DatasetError(PaddlexFeatError):
    """The dataset on disk is missing or malformed."""


class ModelError(PaddlexFeatError):
    """A model name, checkpoint or inference folder is unusable."""


class NotImplementedYetError(PaddlexFeatError):
    """A mode or option whose implementation has not landed yet."""


class GalleryIndexError(PaddlexFeatError):
    """A gallery index folder is missing, damaged, or does not fit the model or the request."""
