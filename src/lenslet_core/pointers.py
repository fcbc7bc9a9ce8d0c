"""Pointer folders: a folder holding ``.lenscat.folder.json`` serves another local folder or S3
prefix as if it were that folder. Logical paths stay under the pointer; reads and writes go to
the target.

This module holds the rules: what a config says (:class:`Pointer`) and which targets may be
followed (:func:`check_target`: allowed roots, loops). Following them — sending each storage
call to the right target — is the router's, :mod:`mounts`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .codec import loads
from .errors import MalformedDocument, PointerLoop, PointerRefused, UnsupportedVersion

__all__ = ["Pointer", "check_target"]

POINTER_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Pointer:
    """A pointer folder's config: ``{"version": 1, "kind": "pointer", "target": {"type":
    "local", "path"} | {"type": "s3", "bucket", "prefix", "region", "endpoint"}, "label",
    "readonly"}``. An S3 target without ``endpoint`` uses the root's (``--endpoint-url``, or
    the ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` environment)."""

    type: Literal["local", "s3"]
    path: str = ""
    bucket: str = ""
    prefix: str = ""
    region: str | None = None
    endpoint: str | None = None
    label: str | None = None
    readonly: bool = False

    @property
    def url(self) -> str:
        """Where it points: a local path, or ``s3://bucket/prefix``."""
        if self.type == "local":
            return self.path
        return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def to_json(self) -> dict[str, Any]:
        target: dict[str, Any] = (
            {"type": "local", "path": self.path}
            if self.type == "local"
            else {"type": "s3", "bucket": self.bucket, "prefix": self.prefix, "region": self.region}
        )
        if self.endpoint is not None:
            target["endpoint"] = self.endpoint
        return {
            "version": POINTER_VERSION,
            "kind": "pointer",
            "target": target,
            "label": self.label,
            "readonly": self.readonly,
        }

    @classmethod
    def decode(cls, data: bytes, *, what: str) -> Pointer:
        document = loads(data, what=what)
        version = document.get("version", document.get("v"))
        if isinstance(version, int) and not isinstance(version, bool) and version > 1:
            raise UnsupportedVersion(f"{what} is version {version}; this lenslet reads 1")
        if document.get("kind") != "pointer":
            raise MalformedDocument(f'{what}: "kind" must be "pointer"')
        target = document.get("target")
        if not isinstance(target, Mapping):
            raise MalformedDocument(f'{what}: "target" must be an object')
        label = document.get("label")
        readonly = document.get("readonly", False)
        if label is not None and not isinstance(label, str):
            raise MalformedDocument(f'{what}: "label" must be text')
        if not isinstance(readonly, bool):
            raise MalformedDocument(f'{what}: "readonly" must be true or false')
        kind = target.get("type")
        if kind == "local":
            path = target.get("path")
            if not isinstance(path, str) or not path or "\0" in path:
                raise MalformedDocument(f'{what}: a local target needs a "path"')
            return cls("local", path=path, label=label, readonly=readonly)
        if kind == "s3":
            bucket, prefix, region = (
                target.get("bucket"),
                target.get("prefix", ""),
                target.get("region"),
            )
            if not isinstance(bucket, str) or not bucket or "/" in bucket:
                raise MalformedDocument(f'{what}: an s3 target needs a "bucket" name')
            endpoint = target.get("endpoint")
            if not isinstance(prefix, str) or not all(
                isinstance(v, (str, type(None))) for v in (region, endpoint)
            ):
                raise MalformedDocument(f'{what}: "prefix", "region" and "endpoint" must be text')
            return cls("s3", bucket=bucket, prefix=prefix, region=region, endpoint=endpoint or None,
                       label=label, readonly=readonly)  # fmt: skip
        raise MalformedDocument(f'{what}: target "type" must be "local" or "s3"')


def check_target(
    folder: str, pointer: Pointer, *, here: str, chain: Sequence[str], allowed: Sequence[str]
) -> str:
    """The URL of the target ``pointer`` (the config of the pointer folder ``folder``, at the
    URL ``here``) opens, once it is allowed and not a loop: a local target must lie inside one
    of the ``allowed`` folders, and no target may contain the pointer folder itself or any of
    the roots in ``chain`` (those passed through to get here, the top one first)."""
    url = pointer.url
    if pointer.type == "local":
        url = os.path.realpath(pointer.path)
        roots = [os.path.realpath(a).rstrip("/") for a in allowed]
        if not any(url == a or url.startswith(a + "/") for a in roots):
            raise PointerRefused(
                f"pointer folder {folder!r} targets {pointer.path!r}, outside the allowed "
                "target roots (setting pointer_roots, `--pointer-root`)",
                path=folder,
            )
    if here == url or _inside(here, url):
        raise PointerLoop(
            f"pointer folder {folder!r} targets {url}, a folder it is inside", path=folder
        )
    for passed in chain:
        if url == passed or _inside(passed, url):
            raise PointerLoop(
                f"pointer folder {folder!r} targets {url}, which it is already inside "
                f"(through {' -> '.join(chain)})",
                path=folder,
            )
    return url


def _inside(ancestor: str, url: str) -> bool:
    """Whether ``ancestor`` (a root passed through) lies inside the target ``url``, so that
    the target would show it again below itself."""
    return ancestor.startswith(url.rstrip("/") + "/")
