"""The exception tree of ``lenslet_core.errors``: stable codes, status hints, builtin bases."""

from __future__ import annotations

import inspect
import re

import pytest

from lenslet_core import errors
from lenslet_core.errors import (
    AlreadyExists,
    CorruptImage,
    CrossSiteRefused,
    DocumentError,
    EngineUnavailable,
    ImageError,
    ImageTooLarge,
    InternalError,
    InvalidDocument,
    InvalidParameter,
    InvalidPath,
    JobFailed,
    LensletError,
    MalformedDocument,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    PointerBroken,
    PointerError,
    PointerLoop,
    PointerRefused,
    PreconditionFailed,
    QueueFull,
    RangeNotSatisfiable,
    ReadOnly,
    SettingsError,
    StorageError,
    ThumbnailPending,
    TooLarge,
    Unauthorized,
    UnsupportedImage,
    UnsupportedVersion,
)

# The tree as drawn in errors.py's docstring: class, lenslet parent, builtin base, code, status.
# Codes are what clients match on: changing one here is a breaking change, not a refactor.
TREE: list[tuple[type[LensletError], type[Exception], type[Exception] | None, str, int]] = [
    (LensletError, Exception, None, "lenslet_error", 500),
    (SettingsError, LensletError, ValueError, "invalid_settings", 500),
    (InvalidPath, LensletError, ValueError, "invalid_path", 400),
    (InvalidDocument, LensletError, ValueError, "invalid_document", 400),
    (NotFound, LensletError, FileNotFoundError, "not_found", 404),
    (PermissionDenied, LensletError, PermissionError, "permission_denied", 403),
    (ReadOnly, PermissionDenied, PermissionError, "read_only", 403),
    (PreconditionFailed, LensletError, None, "precondition_failed", 412),
    (PointerError, LensletError, None, "pointer_error", 502),
    (PointerBroken, PointerError, None, "pointer_broken", 502),
    (PointerLoop, PointerError, None, "pointer_loop", 508),
    (PointerRefused, PointerError, None, "pointer_refused", 403),
    (DocumentError, LensletError, None, "document_error", 422),
    (MalformedDocument, DocumentError, None, "malformed_json", 422),
    (UnsupportedVersion, DocumentError, None, "unsupported_version", 422),
    (ImageError, LensletError, None, "image_error", 422),
    (UnsupportedImage, ImageError, None, "unsupported_image", 415),
    (CorruptImage, ImageError, None, "corrupt_image", 422),
    (ImageTooLarge, ImageError, None, "image_too_large", 413),
    (StorageError, LensletError, None, "storage_error", 502),
    (QueueFull, LensletError, None, "queue_full", 503),
    (AlreadyExists, LensletError, FileExistsError, "already_exists", 409),
    (JobFailed, LensletError, None, "job_failed", 500),
    (EngineUnavailable, LensletError, None, "engine_unavailable", 503),
    (InvalidParameter, LensletError, ValueError, "invalid_parameter", 400),
    (TooLarge, LensletError, None, "too_large", 413),
    (RangeNotSatisfiable, LensletError, None, "range_not_satisfiable", 416),
    (Unauthorized, LensletError, None, "unauthorized", 401),
    (MethodNotAllowed, LensletError, None, "method_not_allowed", 405),
    (CrossSiteRefused, PermissionDenied, PermissionError, "csrf", 403),
    (ThumbnailPending, QueueFull, None, "thumbnail_pending", 503),
    (InternalError, LensletError, None, "internal_error", 500),
]

ALL_ERRORS = [
    obj
    for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, LensletError) and obj.__module__ == errors.__name__
]


def test_the_table_covers_every_error_class() -> None:
    assert {row[0] for row in TREE} == set(ALL_ERRORS)
    assert set(errors.__all__) == {cls.__name__ for cls in ALL_ERRORS}


@pytest.mark.parametrize(
    ("cls", "parent", "builtin", "code", "status"), TREE, ids=[row[0].__name__ for row in TREE]
)
def test_code_status_and_bases(
    cls: type[LensletError],
    parent: type[Exception],
    builtin: type[Exception] | None,
    code: str,
    status: int,
) -> None:
    assert cls.code == code
    assert cls.status == status
    assert issubclass(cls, parent)
    assert issubclass(cls, LensletError)
    if builtin is not None:
        assert issubclass(cls, builtin)
        with pytest.raises(builtin):
            raise cls("refused")


def test_codes_are_unique_and_snake_case() -> None:
    codes = [cls.code for cls in ALL_ERRORS]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert re.fullmatch(r"[a-z]+(?:_[a-z]+)*", code), code


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_status_is_an_http_error_status(cls: type[LensletError]) -> None:
    assert 400 <= cls.status <= 599


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_every_class_defines_its_own_code(cls: type[LensletError]) -> None:
    # A subclass that forgot ``code`` would silently share its parent's.
    assert "code" in vars(cls)
    assert "status" in vars(cls)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_the_docstring_tree_names_every_class_with_its_code_and_status(
    cls: type[LensletError],
) -> None:
    doc = errors.__doc__ or ""
    # PermissionDenied's row is wrapped onto two lines in the drawing.
    pattern = rf"\b{cls.__name__}\b[^\n]*(?:\n[│ ]*)?\s+{cls.code}\s+{cls.status}\b"
    assert re.search(pattern, doc), f"{cls.__name__} is not drawn as {cls.code} {cls.status}"


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_takes_a_message_and_a_path(cls: type[LensletError]) -> None:
    exc = cls("what went wrong", path="trips/a.jpg")
    assert exc.path == "trips/a.jpg"
    assert str(exc) == "what went wrong"
    assert exc.message == "what went wrong"
    assert exc.path == "trips/a.jpg"


def test_path_is_optional() -> None:
    assert NotFound("gone").path is None


def test_builtin_handlers_catch_lenslet_errors() -> None:
    # Code written against the builtins keeps working when lenslet raises its own classes.
    with pytest.raises(OSError, match="nope"):
        raise NotFound("nope")
    with pytest.raises(PermissionError):
        raise ReadOnly("read-only root")
    with pytest.raises(PermissionDenied):
        raise ReadOnly("read-only root")
    with pytest.raises(ValueError, match="bad"):
        raise InvalidPath("bad")
    with pytest.raises(DocumentError):
        raise UnsupportedVersion("v2")


def test_errors_do_not_subclass_unrelated_builtins() -> None:
    assert not issubclass(PreconditionFailed, OSError)
    assert not issubclass(StorageError, ValueError)
    assert not issubclass(MalformedDocument, ValueError)
    assert not issubclass(NotFound, ValueError)
