"""Reading a multipart upload of one file: one way for every route that takes a file (resources, templates)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile

from services.errors import UnsupportedMediaTypeError, ValidationFailedError


@dataclass(frozen=True)
class FileForm:
    filename: str | None
    content_type: str | None
    data: bytes
    fields: dict[str, str]  # the text fields asked for that were sent


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "multipart/form-data"


async def read_file_form(request: Request, *, fields: tuple[str, ...] = ()) -> FileForm:
    """The file in the field ``file`` and the text ``fields``: 415 when the body is not multipart, 422 when it cannot
    be read or has no file (the body's size is limited before this, by the route's ``BODY_LIMIT_KEY``)."""
    if not is_multipart(request):
        raise UnsupportedMediaTypeError("send the file as multipart/form-data in the field `file`")
    try:
        form = await request.form(max_files=1, max_fields=len(fields) + 2)
    except Exception as exc:  # python-multipart's parse errors, a second file
        raise ValidationFailedError(f"the multipart body cannot be read: {exc}", code="malformed_multipart") from exc
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ValidationFailedError("the multipart body needs a file in the field `file`", code="file_missing")
        data = await file.read()
        sent: dict[str, str] = {}
        for name in fields:
            value = form.get(name)
            if value is not None and not isinstance(value, str):
                raise ValidationFailedError(f"`{name}` must be text", code="validation_error")
            if value is not None:
                sent[name] = value
        return FileForm(filename=file.filename, content_type=file.content_type, data=data, fields=sent)
    finally:
        await form.close()
