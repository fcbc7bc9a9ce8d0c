"""The one exception tree of lenslet.

Every error lenslet raises is a ``LensletError``. Each class carries a stable ``code`` (what
clients match on, never reworded) and a ``status`` hint (the HTTP status an adapter should send).
Foreign errors (OSError, fsspec, pyvips, orjson) are translated where they enter: ``storage``,
``imaging`` and ``models``.

    LensletError                        lenslet_error          500
    ├── SettingsError (ValueError)      invalid_settings       500
    ├── InvalidPath (ValueError)        invalid_path           400
    ├── InvalidDocument (ValueError)    invalid_document       400
    ├── InvalidParameter (ValueError)   invalid_parameter      400
    ├── TooLarge                        too_large              413
    ├── RangeNotSatisfiable             range_not_satisfiable  416
    ├── Unauthorized                    unauthorized           401
    ├── MethodNotAllowed                method_not_allowed     405
    ├── NotFound (FileNotFoundError)    not_found              404
    ├── PermissionDenied (PermissionError)
    │                                   permission_denied      403
    │   ├── ReadOnly                    read_only              403
    │   └── CrossSiteRefused            csrf                   403
    ├── PreconditionFailed              precondition_failed    412
    ├── AlreadyExists (FileExistsError) already_exists         409
    ├── PointerError                    pointer_error          502
    │   ├── PointerBroken               pointer_broken         502
    │   ├── PointerLoop                 pointer_loop           508
    │   └── PointerRefused              pointer_refused        403
    ├── DocumentError                   document_error         422
    │   ├── MalformedDocument           malformed_json         422
    │   └── UnsupportedVersion          unsupported_version    422
    ├── ImageError                      image_error            422
    │   ├── UnsupportedImage            unsupported_image      415
    │   ├── CorruptImage                corrupt_image          422
    │   └── ImageTooLarge               image_too_large        413
    ├── StorageError                    storage_error          502
    ├── QueueFull                       queue_full             503
    │   └── ThumbnailPending            thumbnail_pending      503
    ├── JobFailed                       job_failed             500
    ├── EngineUnavailable               engine_unavailable     503
    └── InternalError                   internal_error         500

The request errors (a bad parameter, a body too large, a byte range past the end, a missing
token, a method a route does not take) are raised where a request enters an adapter and mapped
by its one error handler like every other.
"""

from __future__ import annotations

__all__ = [
    "Unauthorized",
    "TooLarge",
    "ThumbnailPending",
    "RangeNotSatisfiable",
    "MethodNotAllowed",
    "InvalidParameter",
    "InternalError",
    "CrossSiteRefused",
    "AlreadyExists",
    "CorruptImage",
    "DocumentError",
    "ImageError",
    "ImageTooLarge",
    "InvalidDocument",
    "InvalidPath",
    "LensletError",
    "MalformedDocument",
    "NotFound",
    "PermissionDenied",
    "PointerBroken",
    "PointerError",
    "PointerLoop",
    "PointerRefused",
    "PreconditionFailed",
    "QueueFull",
    "JobFailed",
    "EngineUnavailable",
    "ReadOnly",
    "SettingsError",
    "StorageError",
    "UnsupportedImage",
    "UnsupportedVersion",
]


class LensletError(Exception):
    """Root of every error lenslet raises."""

    code: str = "lenslet_error"
    status: int = 500

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


class SettingsError(LensletError, ValueError):
    """Settings that cannot work; raised at startup, never later."""

    code = "invalid_settings"
    status = 500


class InvalidPath(LensletError, ValueError):
    """A logical path that is malformed, escapes the root or names a lenslet file."""

    code = "invalid_path"
    status = 400


class InvalidDocument(LensletError, ValueError):
    """A document sent by a client that does not fit its contract (e.g. tags not a list)."""

    code = "invalid_document"
    status = 400


class InvalidParameter(LensletError, ValueError):
    """A request parameter (query, form field, JSON field) that is not what it must be."""

    code = "invalid_parameter"
    status = 400


class TooLarge(LensletError):
    """A request body past its limit, refused as it arrives."""

    code = "too_large"
    status = 413

    def __init__(self, message: str, *, path: str | None = None, limit: int = 0) -> None:
        super().__init__(message, path=path)
        self.limit = limit

    @classmethod
    def over(cls, limit: int, what: str = "the body") -> TooLarge:
        return cls(f"{what} is at most {limit:,} bytes", limit=limit)


class RangeNotSatisfiable(LensletError):
    """A byte range that starts past the end of the file."""

    code = "range_not_satisfiable"
    status = 416

    def __init__(self, message: str, *, path: str | None = None, size: int = 0) -> None:
        super().__init__(message, path=path)
        self.size = size

    @classmethod
    def past(cls, size: int, *, path: str | None = None) -> RangeNotSatisfiable:
        return cls(f"no such byte range (the file has {size:,} bytes)", path=path, size=size)


class Unauthorized(LensletError):
    """A request without the token it needs."""

    code = "unauthorized"
    status = 401


class MethodNotAllowed(LensletError):
    """A method a route does not take; ``allowed`` lists those it does."""

    code = "method_not_allowed"
    status = 405

    def __init__(self, message: str, *, path: str | None = None, allowed: str = "") -> None:
        super().__init__(message, path=path)
        self.allowed = allowed


class NotFound(LensletError, FileNotFoundError):
    """The file or folder does not exist."""

    code = "not_found"
    status = 404


class PermissionDenied(LensletError, PermissionError):
    """The storage backend refused access."""

    code = "permission_denied"
    status = 403


class ReadOnly(PermissionDenied):
    """A write to a root or folder that is configured read-only."""

    code = "read_only"
    status = 403


class CrossSiteRefused(PermissionDenied):
    """A write that came with the session cookie but without the header a cross-site form
    cannot send (``X-Requested-With``)."""

    code = "csrf"
    status = 403


class PreconditionFailed(LensletError):
    """A conditional write lost a race: the stored version is not the expected one."""

    code = "precondition_failed"
    status = 412


class AlreadyExists(LensletError, FileExistsError):
    """A write or move that would replace an existing file (asked not to)."""

    code = "already_exists"
    status = 409


class PointerError(LensletError):
    """A pointer folder that cannot be followed."""

    code = "pointer_error"
    status = 502


class PointerBroken(PointerError):
    """A pointer whose config is unreadable or whose target is missing or unreachable."""

    code = "pointer_broken"
    status = 502


class PointerLoop(PointerError):
    """Pointers that lead back to where they started (A → B → A, or into an ancestor)."""

    code = "pointer_loop"
    status = 508


class PointerRefused(PointerError):
    """A pointer to a local path outside the allowed target roots (``pointer_roots``)."""

    code = "pointer_refused"
    status = 403


class DocumentError(LensletError):
    """A stored JSON document that lenslet cannot use as it is."""

    code = "document_error"
    status = 422


class MalformedDocument(DocumentError):
    """Stored JSON that does not parse or does not have the expected shape."""

    code = "malformed_json"
    status = 422


class UnsupportedVersion(DocumentError):
    """A document written by a newer lenslet (``"v"`` above what this version reads)."""

    code = "unsupported_version"
    status = 422


class ImageError(LensletError):
    """An image lenslet cannot use."""

    code = "image_error"
    status = 422


class UnsupportedImage(ImageError):
    """Not a JPEG, PNG or WebP by content, whatever its name says; ``media_type`` is what it
    is instead, when its content tells (``image/heic``, ``image/gif``, …)."""

    code = "unsupported_image"
    status = 415

    def __init__(
        self, message: str, *, path: str | None = None, media_type: str | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.media_type = media_type


class CorruptImage(ImageError):
    """A supported format whose bytes are truncated or damaged."""

    code = "corrupt_image"
    status = 422


class ImageTooLarge(ImageError):
    """More pixels (or bytes) than the settings allow (a decompression bomb guard). ``width``
    and ``height`` are the header's, when the pixels were the problem."""

    code = "image_too_large"
    status = 413

    def __init__(
        self, message: str, *, path: str | None = None, width: int = 0, height: int = 0
    ) -> None:
        super().__init__(message, path=path)
        self.width = width
        self.height = height


class StorageError(LensletError):
    """The storage backend failed for a reason other than missing files or permissions."""

    code = "storage_error"
    status = 502


class QueueFull(LensletError):
    """The background queue is full (or shutting down) and the caller could not wait."""

    code = "queue_full"
    status = 503


class ThumbnailPending(QueueFull):
    """A thumbnail still being made when the request could wait no longer; ask again after
    ``retry_after`` seconds."""

    code = "thumbnail_pending"
    status = 503

    def __init__(self, message: str, *, path: str | None = None, retry_after: float = 1) -> None:
        super().__init__(message, path=path)
        self.retry_after = retry_after


class JobFailed(LensletError):
    """A background job raised something that is not a lenslet error (a bug, reported with the
    original exception as its cause)."""

    code = "job_failed"
    status = 500


class EngineUnavailable(LensletError):
    """A distributed job engine cannot be used: its scheduler does not answer (at start-up; a
    server that loses it later runs its jobs in-process instead)."""

    code = "engine_unavailable"
    status = 503


class InternalError(LensletError):
    """Something failed that is not a lenslet error: a bug (its log has the cause)."""

    code = "internal_error"
    status = 500
