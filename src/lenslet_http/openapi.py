"""The OpenAPI description, generated from the route table: each endpoint carries its
:class:`Operation` (parameters with their constraints, the request body, every status it can
answer with its body and headers), and :func:`describe` reads the routes of an app and puts them
together with the documents' schemas (:data:`COMPONENTS`). What is described is what is served:
a route without an operation fails the build of the description.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from starlette.routing import BaseRoute, Route

__all__ = ["COMPONENTS", "Answer", "Operation", "Param", "describe", "operation"]

F = TypeVar("F", bound=Callable[..., Any])


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_TEXT = {"type": "string"}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_INT = {"type": "integer"}

#: The documents as clients get them (field names as the contract spells them).
COMPONENTS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": _TEXT, "message": _TEXT},
            }
        },
    },
    "FolderItem": {
        "type": "object",
        "required": ["name", "path", "type", "w", "h", "size", "mtime", "hasThumb", "hasMeta"],
        "properties": {
            "name": _TEXT,
            "path": {**_TEXT, "description": "The image's logical path."},
            "type": {"type": "string", "enum": ["image/jpeg", "image/png", "image/webp"]},
            "w": _INT,
            "h": _INT,
            "size": _INT,
            "mtime": {"type": "number"},
            "addedAt": _TEXT_OR_NULL,
            "createdAt": _TEXT_OR_NULL,
            "star": {"type": ["number", "null"]},
            "hasThumb": {"type": "boolean"},
            "hasMeta": {"type": "boolean"},
            "hash": _TEXT,
        },
    },
    "DirEntry": {
        "type": "object",
        "required": ["name", "kind"],
        "properties": {
            "name": _TEXT,
            "kind": {"type": "string", "enum": ["branch", "leaf-real", "leaf-pointer"]},
        },
    },
    "Skipped": {
        "type": "object",
        "required": ["name", "reason", "code"],
        "properties": {"name": _TEXT, "reason": _TEXT, "code": _TEXT},
    },
    "Manifest": {
        "type": "object",
        "description": "One page of a folder's manifest (or the whole folder: pageCount 1).",
        "required": ["v", "path", "generatedAt", "build", "page", "pageCount", "itemCount"],
        "properties": {
            "v": {"const": 1},
            "path": _TEXT,
            "generatedAt": _TEXT,
            "build": _TEXT,
            "page": _INT,
            "pageCount": _INT,
            "itemCount": _INT,
            "items": {"type": "array", "items": _ref("FolderItem")},
            "dirs": {"type": "array", "items": _ref("DirEntry")},
            "skipped": {"type": "array", "items": _ref("Skipped")},
        },
    },
    "Sidecar": {
        "type": "object",
        "description": "An image's sidecar; fields lenslet does not know are kept as sent.",
        "required": ["v", "tags", "notes", "updatedAt", "updatedBy"],
        "properties": {
            "v": {"const": 1},
            "tags": {"type": "array", "items": _TEXT},
            "notes": _TEXT,
            "exif": {"type": ["object", "null"]},
            "hash": _TEXT_OR_NULL,
            "updatedAt": _TEXT_OR_NULL,
            "updatedBy": _TEXT_OR_NULL,
            "updated_at": _TEXT_OR_NULL,
            "updated_by": _TEXT_OR_NULL,
        },
    },
    "SidecarEdit": {
        "type": "object",
        "description": "The fields to write (a field not named is never changed); stamps in "
        "either spelling.",
        "properties": {
            "tags": {"type": "array", "items": _TEXT},
            "notes": _TEXT,
            "updatedAt": _TEXT,
            "updated_at": _TEXT,
            "updatedBy": _TEXT,
            "updated_by": _TEXT,
        },
    },
    "Hit": {
        "type": "object",
        "description": "A search hit: its folder item (when its manifest lists it) and what "
        "matched.",
        "required": ["path", "name", "tags", "notes"],
        "properties": {
            "w": _INT,
            "h": _INT,
            "size": _INT,
            "type": _TEXT,
            "path": _TEXT,
            "name": _TEXT,
            "tags": {"type": "array", "items": _TEXT},
            "notes": _TEXT,
        },
    },
    "Hits": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref("Hit")}},
    },
    "Pending": {
        "type": "object",
        "required": ["status", "path", "retryAfter"],
        "properties": {"status": {"const": "pending"}, "path": _TEXT, "retryAfter": _INT},
    },
    "Done": {
        "type": "object",
        "required": ["ok", "path"],
        "properties": {"ok": {"const": True}, "path": _TEXT},
    },
    "Deleted": {
        "type": "object",
        "required": ["ok", "deleted"],
        "properties": {"ok": {"const": True}, "deleted": {"type": "array", "items": _TEXT}},
    },
    "Health": {
        "type": "object",
        "description": "Without the token (when one is set) only ok and version.",
        "required": ["ok", "version"],
        "properties": {
            "ok": {"type": "boolean"},
            "version": _TEXT,
            "readonly": {"type": "boolean"},
            "storage": {
                "type": "object",
                "required": ["reachable"],
                "properties": {"reachable": {"type": "boolean"}, "error": {"type": "object"}},
            },
            "jobs": {"type": "object"},
            "gallery": {"type": ["object", "null"]},
        },
    },
}

#: The headers that matter, by name.
HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": "The strong validator of what was answered.", "schema": _TEXT},
    "Retry-After": {"description": "Seconds to wait before asking again.", "schema": _TEXT},
    "Location": {"description": "Where to ask again.", "schema": _TEXT},
    "Content-Range": {"description": "The byte range sent, of the whole.", "schema": _TEXT},
    "WWW-Authenticate": {"description": "Bearer.", "schema": _TEXT},
    "Allow": {"description": "The methods the route takes.", "schema": _TEXT},
}


@dataclasses.dataclass(frozen=True)
class Param:
    """A parameter: in the query (default) or a header."""

    name: str
    schema: Mapping[str, Any]
    description: str
    required: bool = False
    where: str = "query"
    example: Any = None

    def to_json(self) -> dict[str, Any]:
        document = {
            "name": self.name,
            "in": self.where,
            "required": self.required,
            "description": self.description,
            "schema": dict(self.schema),
        }
        if self.example is not None:
            document["example"] = self.example
        return document


@dataclasses.dataclass(frozen=True)
class Answer:
    """One status an endpoint can answer: its body (a component's name, ``None`` for no
    body) and the headers it carries."""

    description: str
    body: str | None = "Error"
    media: str = "application/json"
    headers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"description": self.description}
        if self.body is not None or self.media != "application/json":
            schema = _ref(self.body) if self.body else {}
            document["content"] = {self.media: {"schema": schema} if schema else {}}
        if self.headers:
            document["headers"] = {name: HEADERS[name] for name in self.headers}
        return document


#: What every operation may answer besides its own.
_COMMON = {
    400: Answer("A parameter, path or body that is not what the route takes"),
    500: Answer("lenslet failed (the server log has the cause)"),
}
_SECURED = {
    401: Answer("A token is set and the request did not carry it", headers=("WWW-Authenticate",)),
}


@dataclasses.dataclass(frozen=True)
class Operation:
    """What one method of one route takes and answers."""

    summary: str
    answers: Mapping[int, Answer]
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None
    #: Whether a bearer token (when the server has one) applies.
    secured: bool = True

    def to_json(self) -> dict[str, Any]:
        answers = {**_COMMON, **(_SECURED if self.secured else {}), **self.answers}
        document: dict[str, Any] = {
            "summary": self.summary,
            "parameters": [p.to_json() for p in self.params],
            "responses": {str(status): answers[status].to_json() for status in sorted(answers)},
        }
        if self.body is not None:
            document["requestBody"] = {"required": True, "content": dict(self.body)}
        document["security"] = [{"bearer": []}, {"session": []}] if self.secured else []
        return document


def operation(described: Operation) -> Callable[[F], F]:
    """Attach an endpoint's description to it."""

    def attach(endpoint: F) -> F:
        endpoint.__openapi__ = described  # type: ignore[attr-defined]
        return endpoint

    return attach


def _operations(route: Route) -> dict[str, Operation]:
    methods: Mapping[str, Callable[..., Any]] = getattr(
        route.endpoint, "methods", {method: route.endpoint for method in route.methods or ()}
    )
    found = {}
    for method, endpoint in methods.items():
        if method == "HEAD":
            continue
        described = getattr(endpoint, "__openapi__", None)
        if described is None:
            raise TypeError(f"{method} {route.path} has no operation to describe it")
        found[method.lower()] = described
    return found


def describe(routes: Iterable[BaseRoute], version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes (those that are not plain routes, such as the
    page's static files, are not part of the API)."""
    paths = {
        route.path: {method: op.to_json() for method, op in _operations(route).items()}
        for route in routes
        if isinstance(route, Route) and route.path != "/"
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lenslet",
            "version": version,
            "description": "A file-based image gallery: folders, sidecars, thumbnails, search.",
        },
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "lenslet_session"},
            },
        },
    }
