"""Reading a CSV upload from a multipart request without ever holding more than the limit."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from carstudio.errors import InvalidInput, TooLarge
from carstudio.intake import MAX_BYTES
from carstudio.jobs.options import BatchOptions

# Room for the multipart boundaries and the small form fields around the file.
_ENVELOPE = 64 * 1024
_TRUE = {"1", "true", "yes", "on"}

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "skipInvalid": {"type": "string", "enum": ["true", "false"]},
                        "fresh": {
                            "type": "string",
                            "enum": ["true", "false"],
                            "description": "Make new images even where identical ones were "
                            "made before (the image cache is not used).",
                        },
                        "imageModel": {
                            "type": "string",
                            "description": "A model from the supported table; default the "
                            "server's setting.",
                        },
                        "output": {
                            "type": "string",
                            "enum": ["original", "listing-jpeg", "marketplace-4x3", "webp"],
                            "description": "The files delivered; default the server's "
                            "CARSTUDIO_OUTPUT.",
                        },
                        "nameTemplate": {
                            "type": "string",
                            "description": "How the images are named, from the car fields: "
                            "`{stock_number}_{make}-{model}`; default the stock number and "
                            "VIN, then make, model, year, body style, trim and background.",
                        },
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class CsvUpload:
    data: bytes
    options: BatchOptions


def _too_large() -> TooLarge:
    return TooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it up.")


async def read_csv_upload(request: Request) -> CsvUpload:
    """The `file` part (and `skipInvalid`) of a multipart upload; 413 as soon as it is too big."""
    limit = MAX_BYTES + _ENVELOPE
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large()
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInput("Send the CSV as multipart/form-data with the file in the field 'file'.")
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _too_large()
        return message

    limited = Request(request.scope, receive)
    form = await limited.form(max_files=1, max_fields=20)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("Attach the CSV file in the form field 'file'.")
        data = await upload.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise _too_large()
        skip = str(form.get("skipInvalid", "")).strip().lower() in _TRUE
        model = form.get("imageModel")
        template = form.get("nameTemplate")
        output = form.get("output")
        options = BatchOptions(
            source_name=upload.filename or "",
            skip_invalid=skip,
            model=model.strip() or None if isinstance(model, str) else None,
            fresh=str(form.get("fresh", "")).strip().lower() in _TRUE,
            name_template=template.strip() or None if isinstance(template, str) else None,
            output=output.strip() or None if isinstance(output, str) else None,
        )
        return CsvUpload(data=data, options=options)
    finally:
        await form.close()
