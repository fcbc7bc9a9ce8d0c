"""The OpenAPI description of the HTTP API, served at ``/openapi.json``.

Written out by hand, next to the routes it describes: the API is small, and its contract
(design.md) is what clients are written against.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi"]


def _path_param(description: str, required: bool = True) -> dict[str, Any]:
    return {
        "name": "path",
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def _query(name: str, kind: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": kind}, "description": description}


_ERROR = {"$ref": "#/components/responses/Error"}
_JSON = {"application/json": {"schema": {"type": "object"}}}


def _ok(description: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": content or _JSON}


def openapi(version: str) -> dict[str, Any]:
    """The document, for this lenslet version."""
    folder = _path_param("A folder: '/trips/2025', 'trips/2025', '' or '/' (the root).", False)
    image = _path_param("An image: 'trips/2025/beach.jpg' (a leading '/' is the same).")
    errors = {"400": _ERROR, "403": _ERROR, "404": _ERROR, "422": _ERROR}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lenslet",
            "version": version,
            "description": "A file-based image gallery: folders, sidecars, thumbnails, search.",
        },
        "paths": {
            "/folders": {
                "get": {
                    "summary": "A folder's manifest: the whole folder, or one page of it",
                    "parameters": [
                        folder,
                        _query("page", "integer", "Page number, from 0; absent: every item."),
                    ],
                    "responses": {"200": _ok("The manifest"), "304": _ok("Unchanged", {})} | errors,
                }
            },
            "/item": {
                "get": {
                    "summary": "An image's sidecar (or its EXIF basics)",
                    "parameters": [image],
                    "responses": {"200": _ok("The sidecar; ETag header")} | errors,
                },
                "put": {
                    "summary": "Write an image's sidecar (If-Match: the ETag read)",
                    "parameters": [image],
                    "requestBody": {"required": True, "content": _JSON},
                    "responses": {"200": _ok("What was stored; its new ETag")} | errors,
                },
            },
            "/thumb": {
                "get": {
                    "summary": "An image's WebP thumbnail",
                    "description": "A plain request waits for a thumbnail being made and "
                    "gets the WebP (or 503 past the bound); one that sends Prefer: "
                    "respond-async or a wait gets 202 after that wait.",
                    "parameters": [
                        image,
                        _query("wait", "number", "Seconds to wait before a 202, <= 10."),
                    ],
                    "responses": {
                        "200": _ok("The WebP", {"image/webp": {}}),
                        "202": _ok("Being made (Prefer: respond-async): poll Location"),
                        "304": _ok("Unchanged", {}),
                        "503": _ERROR,
                    }
                    | errors,
                }
            },
            "/file": {
                "get": {
                    "summary": "The original image (Range supported)",
                    "parameters": [image],
                    "responses": {
                        "200": _ok("The image", {"image/*": {}}),
                        "206": _ok("A byte range", {"image/*": {}}),
                        "416": _ERROR,
                    }
                    | errors,
                },
                "post": {
                    "summary": "Upload an image (multipart: dest, file, overwrite)",
                    "requestBody": {"required": True, "content": {"multipart/form-data": {}}},
                    "responses": {"201": _ok("{ok, path}"), "409": _ERROR, "415": _ERROR} | errors,
                },
            },
            "/move": {
                "post": {
                    "summary": "Move an image, its sidecar and thumbnail (src, dest, overwrite)",
                    "requestBody": {"required": True, "content": _JSON},
                    "responses": {"200": _ok("{ok, path}"), "409": _ERROR} | errors,
                }
            },
            "/delete": {
                "post": {
                    "summary": "Delete images with their sidecars and thumbnails",
                    "requestBody": {"required": True, "content": _JSON},
                    "responses": {"200": _ok("{ok, deleted}")} | errors,
                }
            },
            "/search": {
                "get": {
                    "summary": "Images by name, tag or note",
                    "parameters": [
                        _query("q", "string", "Text to find, any case."),
                        _query("limit", "integer", "1 to 1000 (default 100)."),
                        folder,
                    ],
                    "responses": {"200": _ok("{items: [folder items with path, tags, notes]}")}
                    | errors,
                }
            },
            "/openapi.json": {
                "get": {"summary": "This description", "responses": {"200": _ok("OpenAPI 3.1")}}
            },
            "/events": {
                "get": {
                    "summary": "Server-sent events: 'folders' with the folders changed",
                    "responses": {"200": _ok("The stream", {"text/event-stream": {}})},
                }
            },
            "/health": {
                "get": {
                    "summary": "This server, its job queue, the storage and _health.json",
                    "responses": {
                        "200": _ok("{ok, version, readonly, storage, jobs, gallery}"),
                        "503": _ERROR,
                    },
                }
            },
        },
        "components": {
            "responses": {
                "Error": {
                    "description": "An error: a stable code and a message",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "error": {
                                        "type": "object",
                                        "properties": {
                                            "code": {"type": "string"},
                                            "message": {"type": "string"},
                                        },
                                        "required": ["code", "message"],
                                    }
                                },
                            }
                        }
                    },
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
