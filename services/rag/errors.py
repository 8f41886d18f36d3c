"""Why a document cannot be ingested. The messages are plain enough to show as a resource's failure reason."""

from __future__ import annotations

from services.errors import UnsupportedMediaTypeError, ValidationFailedError


class UnsupportedTypeError(UnsupportedMediaTypeError):
    """The content (not just the name) is of a kind we do not extract: images, archives, other binaries (415)."""


class CorruptDocumentError(ValidationFailedError):
    """The file claims a supported type but cannot be read: damaged, truncated or encrypted (422)."""

    code = "corrupt_document"


class EmptyDocumentError(ValidationFailedError):
    """Nothing to index: an empty file, only whitespace, or a PDF without a text layer (422)."""

    code = "empty_document"
