"""The endpoints that change images: ``POST /file`` (upload), ``POST /move``, ``POST /delete``
— refused on a read-only root or pointer folder."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from lenslet_core import InvalidParameter, TooLarge

from .openapi import Answer, Operation, operation
from .params import flag, form_fields, lens_of
from .responses import ORJSONResponse, limited
from .served import served

__all__ = ["MAX_UPLOADS", "delete", "move", "upload"]

#: What a multipart upload may carry besides the image (boundaries, headers, dest).
_FORM_OVERHEAD = 64 * 1024
#: Uploads read at once (each is held in memory while its content is checked).
MAX_UPLOADS = 4


@operation(
    Operation(
        "Upload an image (multipart: dest, file, overwrite)",
        {
            201: Answer("Stored", "Done"),
            403: Answer("The root or the pointer folder is read-only"),
            409: Answer("An image is there already (and overwrite is not set)"),
            413: Answer("The upload is above the size limit"),
            415: Answer("Not a JPEG, PNG or WebP"),
            422: Answer("The image is damaged"),
        },
        body={
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "dest": {"type": "string", "description": "A folder, or the image's path."},
                        "file": {"type": "string", "format": "binary"},
                        "overwrite": {"type": "string", "enum": ["true", "false"]},
                    },
                }
            }
        },
    )
)
async def upload(request: Request) -> Response:
    """``POST /file`` (multipart: ``dest``, ``file``, optional ``overwrite``): add an image.
    ``dest`` is the folder (the file keeps its name) or the new image's full path."""
    lens = lens_of(request)
    limit = lens.settings.max_file_bytes
    # Uploads take turns past a few at once: each is held in memory while it is checked and
    # written.
    async with served(request).uploads:
        body = limited(request, limit + _FORM_OVERHEAD, "an upload")
        async with body.form(max_files=1, max_fields=8) as form:
            sent = form.get("file")
            dest = form.get("dest", "")
            overwrite = flag(form.get("overwrite"))
            if sent is None or isinstance(sent, str):
                raise InvalidParameter("the form needs a 'file' part with the image")
            if not isinstance(dest, str):
                raise InvalidParameter("'dest' must be text: a folder or an image path")
            if (sent.size or 0) > limit:
                raise TooLarge.over(limit, "an image")
            data = await sent.read()
            name = sent.filename or ""
        path = await lens.upload(dest, name, data, overwrite=overwrite)
    return ORJSONResponse({"ok": True, "path": path}, status_code=201)


@operation(
    Operation(
        "Move an image with its sidecar and thumbnail (src, dest, overwrite)",
        {
            200: Answer("Moved", "Done"),
            403: Answer("The root or the pointer folder is read-only"),
            404: Answer("No such image"),
            409: Answer("An image is at dest already (and overwrite is not set)"),
        },
        body={
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["src", "dest"],
                    "properties": {
                        "src": {"type": "string"},
                        "dest": {
                            "type": "string",
                            "description": "A folder, or the new image path.",
                        },
                        "overwrite": {"type": "boolean"},
                    },
                }
            }
        },
    )
)
async def move(request: Request) -> Response:
    """``POST /move`` (form or JSON: ``src``, ``dest``, optional ``overwrite``): move an image
    with its sidecar and thumbnail; ``dest`` is a folder or a new image path. An image already
    at ``dest`` gives 409 unless ``overwrite`` is true."""
    fields = await form_fields(request)
    source, target = fields.get("src"), fields.get("dest")
    if not isinstance(source, str) or not isinstance(target, str):
        raise InvalidParameter("'src' and 'dest' are both needed")
    path = await lens_of(request).move(source, target, overwrite=flag(fields.get("overwrite")))
    return ORJSONResponse({"ok": True, "path": path})


@operation(
    Operation(
        "Delete images with their sidecars and thumbnails",
        {
            200: Answer("Those deleted (images not there are skipped)", "Deleted"),
            403: Answer("The root or the pointer folder is read-only"),
        },
        body={
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["paths"],
                    "properties": {"paths": {"type": "array", "items": {"type": "string"}}},
                }
            }
        },
    )
)
async def delete(request: Request) -> Response:
    """``POST /delete`` (JSON ``{"paths": [...]}``): delete images with their sidecars and
    thumbnails."""
    fields = await form_fields(request)
    wanted = fields.get("paths")
    if not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted):
        raise InvalidParameter('the body must be {"paths": ["a.jpg", ...]}')
    deleted = await lens_of(request).delete(wanted)
    return ORJSONResponse({"ok": True, "deleted": deleted})
