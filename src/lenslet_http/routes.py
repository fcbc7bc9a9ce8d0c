"""The endpoints: each parses its request, calls the facade once or twice, and answers."""

from __future__ import annotations

import collections
import gzip
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from lenslet_core import (
    InvalidDocument,
    Lenslet,
    LensletError,
    Manifest,
    Pending,
    QueueFull,
    __version__,
)

from .openapi import openapi
from .responses import (
    BadParameter,
    ORJSONResponse,
    error_response,
    etag_matches,
    parse_range,
    plain_etag,
    quoted,
)

__all__ = ["routes"]

#: Longest a ``/thumb`` request waits for a thumbnail being made, whatever it asks for.
MAX_WAIT = 10.0
#: Default wait for a thumbnail being made before answering 202.
DEFAULT_WAIT = 0.8
#: Largest sidecar body accepted by ``PUT /item``.
MAX_SIDECAR_BYTES = 1024 * 1024
#: ``updatedBy`` of an HTTP write whose body and ``X-Lenslet-User`` header name nobody.
HTTP_WRITER = "web"
#: Bytes read per step when streaming an original.
CHUNK = 1024 * 1024
#: Caching of thumbnails: their URL names an image, their ETag its content.
THUMB_CACHE = "public, max-age=86400, stale-while-revalidate=604800"


def _lens(request: Request) -> Lenslet:
    lens: Lenslet = request.app.state.lens
    return lens


def _path(request: Request) -> str:
    return request.query_params.get("path", "")


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}, not {value}")
    return value


def _float(request: Request, name: str, default: float, high: float) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value >= 0:  # NaN too
        raise BadParameter(f"{name} must be >= 0, not {raw!r}")
    return min(value, high)


def _folder_json(manifest: Manifest) -> dict[str, Any]:
    document = manifest.to_json()
    prefix = manifest.path + "/" if manifest.path else ""
    for item in document["items"]:
        item["path"] = prefix + item["name"]
    return document


#: Encoded folder pages kept, by (folder, build, page): a page of a build never changes.
_ENCODED_PAGES = 64


async def folders(request: Request) -> Response:
    """``GET /folders?path=&page=``: one page of a folder's manifest."""
    page = _int(request, "page", 0, 0, 1_000_000)
    manifest = await _lens(request).folder(_path(request), page)
    etag = f"{manifest.build}-{manifest.page}"
    headers = {"ETag": quoted(etag), "Cache-Control": "no-cache"}
    if etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    encoded: collections.OrderedDict[tuple[str, str, int], list[bytes]] = request.app.state.pages
    key = (manifest.path, manifest.build, manifest.page)
    bodies = encoded.get(key)
    if bodies is None:
        bodies = encoded[key] = [orjson.dumps(_folder_json(manifest))]
        while len(encoded) > _ENCODED_PAGES:
            encoded.popitem(last=False)
    else:
        encoded.move_to_end(key)
    headers["Vary"] = "Accept-Encoding"
    if len(bodies[0]) >= 1024 and "gzip" in request.headers.get("accept-encoding", ""):
        if len(bodies) == 1:  # compressed once per page of a build, not once per request
            bodies.append(gzip.compress(bodies[0], compresslevel=6, mtime=0))
        headers["Content-Encoding"] = "gzip"
        return Response(bodies[1], media_type="application/json", headers=headers)
    return Response(bodies[0], media_type="application/json", headers=headers)


async def get_item(request: Request) -> Response:
    """``GET /item?path=``: the sidecar, with the EXIF basics when it has none."""
    item = await _lens(request).item(_path(request))
    headers = {"ETag": quoted(item.etag), "Cache-Control": "no-cache"}
    if etag_matches(request, item.etag):
        return Response(status_code=304, headers=headers)
    return ORJSONResponse(item.to_json(), headers=headers)


async def put_item(request: Request) -> Response:
    """``PUT /item?path=``: write a sidecar by the rules of design.md."""
    body = await request.body()
    if len(body) > MAX_SIDECAR_BYTES:
        return error_response(413, "too_large", f"a sidecar is at most {MAX_SIDECAR_BYTES} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidDocument(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidDocument("the body must be a JSON object (the whole sidecar)")
    if_match = request.headers.get("if-match")
    item = await _lens(request).update_item(
        _path(request),
        document,
        if_match=plain_etag(if_match) if if_match else None,
        updated_by=request.headers.get("x-lenslet-user") or HTTP_WRITER,
    )
    return ORJSONResponse(item.to_json(), headers={"ETag": quoted(item.etag)})


async def thumb(request: Request) -> Response:
    """``GET /thumb?path=&wait=``: the WebP, or 202 while it is being made."""
    wait = _float(request, "wait", DEFAULT_WAIT, MAX_WAIT)
    path = _path(request)
    try:
        result = await _lens(request).thumbnail(path, wait=wait)
    except QueueFull as exc:
        return error_response(503, exc.code, exc.message, {"Retry-After": "5"})
    if isinstance(result, Pending):
        retry = max(1, round(result.retry_after))
        location = f"{request.url.path}?{urlencode({'path': result.path})}"
        body = {"status": "pending", "path": result.path, "retryAfter": retry}
        headers = {"Retry-After": str(retry), "Location": location, "Cache-Control": "no-store"}
        return ORJSONResponse(body, status_code=202, headers=headers)
    headers = {"ETag": quoted(result.etag), "Cache-Control": THUMB_CACHE}
    if etag_matches(request, result.etag):
        return Response(status_code=304, headers=headers)
    return Response(result.data, media_type=result.media_type, headers=headers)


async def file(request: Request) -> Response:
    """``GET /file?path=``: the original image, whole or one byte range."""
    lens = _lens(request)
    original = await lens.original(_path(request))
    headers = {
        "ETag": quoted(original.etag),
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-cache",
    }
    if etag_matches(request, original.etag):
        return Response(status_code=304, headers=headers)
    wanted = parse_range(request.headers.get("range"), original.size)
    if wanted is False:
        headers["Content-Range"] = f"bytes */{original.size}"
        return error_response(416, "range_not_satisfiable", "no such byte range", headers)
    start, end = wanted if isinstance(wanted, tuple) else (0, original.size)
    status = 206 if isinstance(wanted, tuple) else 200
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{original.size}"
    headers["Content-Length"] = str(end - start)

    async def parts() -> AsyncIterator[bytes]:
        position = start
        while position < end:
            data = await lens.read_original(original.path, position, min(end, position + CHUNK))
            if not data:
                return  # the file shrank while it was being sent
            position += len(data)
            yield data

    return StreamingResponse(
        parts(), status_code=status, media_type=original.media_type, headers=headers
    )


async def search(request: Request) -> Response:
    """``GET /search?q=&limit=&path=``: images by name, tag or note."""
    limit = _int(request, "limit", 100, 1, 1000)
    lens = _lens(request)
    found = await lens.search(request.query_params.get("q", ""), limit=limit, path=_path(request))
    # Shaped like folder items (size, w, h, hasThumb, …) so a client renders them alike.
    entries = await lens.entries([item.path for item in found])
    items = []
    for item in found:
        entry = entries.get(item.path)
        items.append({**(entry.to_json() if entry else {}), **item.to_json()})
    return ORJSONResponse({"items": items})


async def health(request: Request) -> Response:
    """``GET /health``: this process, its job queue, the storage, and ``_health.json``."""
    lens = _lens(request)
    try:
        await lens.storage.check_root()
        storage: dict[str, Any] = {"reachable": True}
    except LensletError as exc:
        storage = {"reachable": False, "error": {"code": exc.code, "message": exc.message}}
    try:
        gallery = await lens.stored_health()
    except LensletError:
        gallery = None
    jobs = lens.jobs.stats().to_json()
    ok = storage["reachable"] and not jobs["failed"] and (gallery is None or gallery["ok"])
    body = {"ok": ok, "storage": storage, "jobs": jobs, "gallery": gallery}
    return ORJSONResponse(body, status_code=200 if storage["reachable"] else 503)


async def upload(request: Request) -> Response:
    """``POST /file`` (multipart: ``dest``, ``file``, optional ``overwrite``): add an image.
    ``dest`` is the folder (the file keeps its name) or the new image's full path."""
    lens = _lens(request)
    async with request.form(max_files=1, max_fields=8) as form:
        sent = form.get("file")
        dest = form.get("dest", "")
        overwrite = _flag(form.get("overwrite"))
        if sent is None or isinstance(sent, str):
            raise BadParameter("the form needs a 'file' part with the image")
        if not isinstance(dest, str):
            raise BadParameter("'dest' must be text: a folder or an image path")
        size = sent.size or 0
        limit = lens.settings.max_file_bytes
        if size > limit:
            return error_response(413, "too_large", f"an image is at most {limit:,} bytes")
        data = await sent.read()
        name = sent.filename or ""
    folder = dest.rstrip("/")
    last = folder.rsplit("/", 1)[-1]
    if folder and "." in last and not await _is_folder(lens, folder):
        folder, name = folder.rsplit("/", 1) if "/" in folder else ("", folder)
    if not name:
        raise BadParameter("the file part needs a filename, or dest the image's full path")
    path = await lens.upload(folder, name, data, overwrite=overwrite)
    return ORJSONResponse({"ok": True, "path": path}, status_code=201)


def _flag(value: object) -> bool:
    """A yes/no field of a form (text) or a JSON body (a boolean)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return value is True


async def _is_folder(lens: Lenslet, path: str) -> bool:
    try:
        return (await lens.storage.info(path)).is_folder
    except LensletError:
        return False


async def move(request: Request) -> Response:
    """``POST /move`` (form or JSON: ``src``, ``dest``, optional ``overwrite``): move an image
    with its sidecar and thumbnail; ``dest`` is a folder or a new image path. An image already
    at ``dest`` gives 409 unless ``overwrite`` is true."""
    fields = await _fields(request)
    source, target = fields.get("src"), fields.get("dest")
    if not isinstance(source, str) or not isinstance(target, str):
        raise BadParameter("'src' and 'dest' are both needed")
    path = await _lens(request).move(source, target, overwrite=_flag(fields.get("overwrite")))
    return ORJSONResponse({"ok": True, "path": path})


async def delete(request: Request) -> Response:
    """``POST /delete`` (JSON ``{"paths": [...]}``): delete images with their sidecars and
    thumbnails."""
    fields = await _fields(request)
    wanted = fields.get("paths")
    if not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted):
        raise BadParameter('the body must be {"paths": ["a.jpg", ...]}')
    deleted = await _lens(request).delete(wanted)
    return ORJSONResponse({"ok": True, "deleted": deleted})


async def _fields(request: Request) -> dict[str, Any]:
    """A small body as fields: JSON, or a form (URL-encoded or multipart)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()
        if len(body) > MAX_SIDECAR_BYTES:
            raise BadParameter("the body is too large")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadParameter(f"the body is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise BadParameter("the body must be a JSON object")
        return document
    async with request.form(max_files=0, max_fields=16) as form:
        return {key: value for key, value in form.items() if isinstance(value, str)}


async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``: the description of this API."""
    return ORJSONResponse(openapi(__version__))


routes = [
    Route("/folders", folders, methods=["GET"]),
    Route("/item", get_item, methods=["GET"]),
    Route("/item", put_item, methods=["PUT"]),
    Route("/thumb", thumb, methods=["GET"]),
    Route("/file", file, methods=["GET"]),
    Route("/search", search, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/file", upload, methods=["POST"]),
    Route("/move", move, methods=["POST"]),
    Route("/delete", delete, methods=["POST"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
]
