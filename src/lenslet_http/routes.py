"""The endpoints: each parses its request, calls the facade once or twice, and answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from lenslet_core import (
    InvalidDocument,
    NotFound,
    Pending,
    RangeNotSatisfiable,
    ThumbnailPending,
    __version__,
)

from .images import delete, move, upload
from .openapi import Answer, Operation, Param, describe, operation
from .params import (
    FOLDER,
    HTTP_WRITER,
    IF_MATCH,
    IF_NONE_MATCH,
    IMAGE,
    PAGE,
    PREFER,
    RANGE,
    USER,
    WAIT,
    asks_async,
    int_param,
    json_object,
    lens_of,
    path_of,
    query,
)
from .responses import (
    ORJSONResponse,
    Raw,
    etag_matches,
    parse_range,
    plain_etag,
    quoted,
    raw_headers,
)
from .routing import Exact
from .served import served

__all__ = ["routes"]

#: Bytes read per step when streaming an original.
CHUNK = 1024 * 1024
#: Caching of thumbnails: their URL names an image, their ETag its content.
THUMB_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
_JSON = b"application/json"
_NO_CACHE = b"no-cache"
_THUMB_CACHE = THUMB_CACHE.encode()


@operation(
    Operation(
        "A folder's manifest: the whole folder, or one page of it",
        {
            200: Answer("The manifest", "Manifest", headers=("ETag",)),
            304: Answer("Unchanged since the ETag sent (If-None-Match)", None, headers=("ETag",)),
            404: Answer("No such folder, or no such page"),
            508: Answer("A pointer folder on the way loops"),
        },
        (FOLDER, PAGE, IF_NONE_MATCH),
    )
)
async def folders(request: Request) -> Response:
    """``GET /folders?path=&page=``: the whole folder, or with ``page`` one page of it."""
    lens = lens_of(request)
    if "page" in query(request):
        page = int_param(request, "page", 0, 0, 1_000_000)
        manifest = await lens.folder(path_of(request), page)
        etag = f"{manifest.build}-{manifest.page}"
    else:
        page = -1
        manifest = await lens.whole_folder(path_of(request))
        etag = f"{manifest.build}-all"
    if etag_matches(request, etag):
        return Response(
            status_code=304, headers={"ETag": quoted(etag), "Cache-Control": "no-cache"}
        )
    encoded = await served(request).pages.get(manifest, page, etag)
    return Raw(encoded.body, encoded.headers)


@operation(
    Operation(
        "An image's sidecar (or its EXIF basics when it has none)",
        {
            200: Answer("The sidecar", "Sidecar", headers=("ETag",)),
            304: Answer("Unchanged since the ETag sent", None, headers=("ETag",)),
            404: Answer("No such image"),
            422: Answer("The sidecar on storage is not readable JSON"),
        },
        (IMAGE, IF_NONE_MATCH),
    )
)
async def get_item(request: Request) -> Response:
    """``GET /item?path=``: the sidecar, with the EXIF basics when it has none."""
    path = path_of(request)
    if not path.strip("/"):
        # Clients ask before anything is selected: no image there, like any missing one.
        raise NotFound("no image is named: path is empty", path="")
    item = await lens_of(request).item(path)
    if etag_matches(request, item.etag):
        headers = {"ETag": quoted(item.etag), "Cache-Control": "no-cache"}
        return Response(status_code=304, headers=headers)
    encoded = served(request).items.get(
        item.path, item, lambda: orjson.dumps(item.to_json()), item.etag
    )
    return Raw(encoded.body, encoded.headers)


@operation(
    Operation(
        "Write an image's sidecar by the write rules (If-Match: the ETag read)",
        {
            200: Answer(
                "What was stored, as the next GET answers it", "Sidecar", headers=("ETag",)
            ),
            403: Answer("The root or the pointer folder is read-only"),
            404: Answer("No such image"),
            412: Answer("The sidecar kept changing under other writers"),
            413: Answer("The body is larger than a sidecar may be"),
        },
        (IMAGE, IF_MATCH, USER),
        body={"application/json": {"schema": {"$ref": "#/components/schemas/SidecarEdit"}}},
    )
)
async def put_item(request: Request) -> Response:
    """``PUT /item?path=``: write a sidecar by the rules of design.md."""
    document = await json_object(request, "a sidecar", InvalidDocument)
    if_match = request.headers.get("if-match")
    item = await lens_of(request).update_item(
        path_of(request),
        document,
        if_match=plain_etag(if_match) if if_match else None,
        updated_by=request.headers.get("x-lenslet-user") or None,
        writer=HTTP_WRITER,
    )
    return ORJSONResponse(item.to_json(), headers={"ETag": quoted(item.etag)})


@operation(
    Operation(
        "An image's WebP thumbnail (made on request when missing)",
        {
            200: Answer("The WebP", None, "image/webp", ("ETag",)),
            202: Answer(
                "Still being made (the client asked for 202): poll Location",
                "Pending",
                headers=("Retry-After", "Location"),
            ),
            304: Answer("Unchanged since the ETag sent", None, headers=("ETag",)),
            307: Answer(
                "With presign: the thumbnail at a presigned URL", None, headers=("Location",)
            ),
            404: Answer("No such image"),
            413: Answer("The image is above the size limits"),
            415: Answer("Not a JPEG, PNG or WebP"),
            422: Answer("The image is damaged"),
            503: Answer(
                "Not made in time, or the queue is full: ask again later", headers=("Retry-After",)
            ),
        },
        (IMAGE, WAIT, PREFER, IF_NONE_MATCH),
    )
)
async def thumb(request: Request) -> Response:
    """``GET /thumb?path=&wait=``: the WebP. One still being made is awaited (up to the app's
    ``thumb_wait``; then 503, never cached); a client that asks for the 202 protocol gets
    ``202 Accepted`` with ``Retry-After`` and ``Location`` after its own, shorter wait."""
    asked = asks_async(request)
    path = path_of(request)
    elsewhere = await _presigned(request, thumbnail=True)
    if elsewhere is not None:
        return elsewhere
    wait = served(request).thumb_wait if asked is None else asked
    result = await lens_of(request).thumbnail(path, wait=wait)
    if isinstance(result, Pending):
        retry = max(1, round(result.retry_after))
        if asked is None:
            # An <img> or a plain fetch() takes any 2xx body as the picture: not done yet is
            # an error it will ask again for, never a body it would cache.
            message = f"the thumbnail of {result.path!r} is still being made; retry in {retry} s"
            raise ThumbnailPending(message, path=result.path, retry_after=retry)
        location = f"{request.url.path}?{urlencode({'path': result.path})}"
        body = {"status": "pending", "path": result.path, "retryAfter": retry}
        headers = _NOT_YET | {"Retry-After": str(retry), "Location": location}
        return ORJSONResponse(body, status_code=202, headers=headers)
    if etag_matches(request, result.etag):
        headers = {"ETag": quoted(result.etag), "Cache-Control": THUMB_CACHE}
        return Response(status_code=304, headers=headers)
    media_type = result.media_type.encode()
    return Raw(result.data, raw_headers(result.data, media_type, result.etag, _THUMB_CACHE))


async def _presigned(request: Request, *, thumbnail: bool) -> Response | None:
    """With ``presign``, a redirect to a URL that serves the file without this server (an S3
    presigned GET); ``None`` to serve it here."""
    seconds = served(request).presign
    if seconds is None:
        return None
    url = await lens_of(request).link(path_of(request), seconds=seconds, thumbnail=thumbnail)
    if url is None:
        return None
    # Kept by the browser for well under the link's life, and by nobody else.
    keep = {"Cache-Control": f"private, max-age={max(0, min(seconds // 2, 3600))}"}
    return RedirectResponse(url, status_code=307, headers=keep)


#: Headers of an answer that is not the thumbnail (yet): nobody may keep it.
_NOT_YET = {"Cache-Control": "no-store"}


@operation(
    Operation(
        "The original image, whole or one byte range",
        {
            200: Answer("The image", None, "image/*", ("ETag",)),
            206: Answer("The byte range asked for", None, "image/*", ("ETag", "Content-Range")),
            307: Answer("With presign: the image at a presigned URL", None, headers=("Location",)),
            304: Answer("Unchanged since the ETag sent", None, headers=("ETag",)),
            404: Answer("No such image"),
            416: Answer("The range starts past the end", headers=("Content-Range",)),
        },
        (IMAGE, RANGE, IF_NONE_MATCH),
    )
)
async def file(request: Request) -> Response:
    """``GET /file?path=``: the original image, whole or one byte range."""
    elsewhere = await _presigned(request, thumbnail=False)
    if elsewhere is not None:
        return elsewhere
    lens = lens_of(request)
    original = await lens.original(path_of(request))
    headers = {
        "ETag": quoted(original.etag),
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-cache",
    }
    if etag_matches(request, original.etag):
        return Response(status_code=304, headers=headers)
    wanted = parse_range(request.headers.get("range"), original.size)
    if wanted is False:
        raise RangeNotSatisfiable.past(original.size, path=original.path)
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


@operation(
    Operation(
        "Images by name, tag or note (exact tags first, then by path)",
        {
            200: Answer("The hits, shaped like folder items", "Hits", headers=("ETag",)),
            304: Answer("The same hits as for the ETag sent", None, headers=("ETag",)),
        },
        (
            Param("q", {"type": "string"}, "Text to find, any case.", example="sea"),
            Param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "At most this many hits (default 100).",
            ),
            FOLDER,
            IF_NONE_MATCH,
        ),
    )
)
async def search(request: Request) -> Response:
    """``GET /search?q=&limit=&path=``: images by name, tag or note."""
    limit = int_param(request, "limit", 100, 1, 1000)
    asked = query(request)
    hits = await lens_of(request).find(asked.get("q", ""), limit=limit, path=asked.get("path", ""))
    encoded = served(request).found.get(
        request.scope["query_string"],  # what the hits answer: the same hits, the same bytes
        hits,
        lambda: orjson.dumps({"items": [hit.to_json() for hit in hits]}),
    )
    if etag_matches(request, encoded.etag):
        headers = {"ETag": quoted(encoded.etag), "Cache-Control": "no-cache"}
        return Response(status_code=304, headers=headers)
    return Raw(encoded.body, encoded.headers)


@operation(
    Operation(
        "This server, its job queue, the storage and _health.json",
        {
            200: Answer("The storage answered", "Health"),
            503: Answer("The storage did not answer", "Health"),
        },
        secured=False,
    )
)
async def health(request: Request) -> Response:
    """``GET /health``: this process, its job queue, the storage, and ``_health.json``
    (:meth:`Lenslet.status`). With a bearer token set, a request without it gets only
    ``{ok, version}``."""
    status = await lens_of(request).status()
    code = 200 if status.reachable else 503
    if not getattr(request.state, "authorized", True):
        return ORJSONResponse({"ok": status.ok, "version": __version__}, status_code=code)
    body = {"version": __version__, **status.to_json()}
    return ORJSONResponse(body, status_code=code)


#: Seconds between two comments on an idle event stream (proxies close silent connections).
EVENTS_KEEPALIVE = 15.0


@operation(
    Operation(
        "Server-sent events: 'folders' events with the folders changed",
        {200: Answer("The stream (it does not end)", None, "text/event-stream")},
    )
)
async def events(request: Request) -> Response:
    """``GET /events``: server-sent events, one ``folders`` event per set of folders changed
    (``{"folders": [...]}``), for pages that show them."""
    lens = lens_of(request)

    async def stream() -> AsyncIterator[bytes]:
        yield b": lenslet\n\n"
        async with lens.subscribe() as changes:
            while True:
                with anyio.move_on_after(EVENTS_KEEPALIVE) as idle:
                    folders = await changes.receive()
                if idle.cancelled_caught:
                    yield b": idle\n\n"
                    continue
                data = orjson.dumps({"folders": sorted(folders)})
                yield b"event: folders\ndata: " + data + b"\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@operation(Operation("This description", {200: Answer("OpenAPI 3.1", None)}, secured=False))
async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``: the description of this API, from its route table."""
    document = served(request).openapi
    if document is None:
        document = served(request).openapi = describe(request.app.routes, __version__)
    return ORJSONResponse(document)


def _route(path: str, **endpoints: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route for a path, whatever its methods, so a wrong method's 405 lists them all.
    Each method's endpoint is called with nothing between (the router finds it by method);
    the endpoint that joins them is what Starlette and the description see."""
    name = path.strip("/") or "root"
    if len(endpoints) == 1:
        ((method, only),) = endpoints.items()
        return Exact(path, only, methods=[method], name=name)

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    endpoint.__doc__ = " ".join(e.__doc__ or "" for e in endpoints.values())
    endpoint.methods = endpoints  # type: ignore[attr-defined]  # read by the description
    return Exact(path, endpoint, methods=list(endpoints), name=name, by_method=endpoints)


#: Most asked for first: a request is matched against the routes in this order (a gallery page
#: asks for dozens of thumbnails to each folder page it lists).
routes = [
    _route("/thumb", GET=thumb),
    _route("/folders", GET=folders),
    _route("/item", GET=get_item, PUT=put_item),
    _route("/search", GET=search),
    _route("/file", GET=file, POST=upload),
    _route("/health", GET=health),
    _route("/move", POST=move),
    _route("/delete", POST=delete),
    _route("/events", GET=events),
    _route("/openapi.json", GET=openapi_json),
]
