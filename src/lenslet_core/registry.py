"""The backends by fsspec protocol: which :class:`~lenslet_core.backend.Backend` opens a root
of each (:mod:`local` for files, :mod:`s3`, :mod:`filesystem` for any other protocol), and the
options each protocol's filesystem opens with unless the settings say otherwise. Another
backend comes in by :func:`register_backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import s3
from .backend import Backend, BackendFactory
from .filesystem import FilesystemBackend, protocol_of
from .local import LocalBackend

__all__ = ["backend_for", "options_for", "register_backend"]

#: The backends by fsspec protocol; any other protocol gets the generic fsspec backend.
_BACKENDS: dict[str, BackendFactory] = {
    "file": LocalBackend.for_filesystem,
    "local": LocalBackend.for_filesystem,
    "s3": s3.S3Backend,
    "s3a": s3.S3Backend,
}


#: The options each protocol's filesystem is opened with unless told otherwise.
_DEFAULTS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "s3": s3.with_defaults,
    "s3a": s3.with_defaults,
}


def register_backend(
    protocol: str,
    factory: BackendFactory,
    *,
    defaults: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Use ``factory(fs, root)`` for roots of an fsspec ``protocol`` (e.g. a GCS backend for
    ``"gs"``), replacing the one registered before; ``defaults`` adds the options its
    filesystem is opened with unless told otherwise."""
    _BACKENDS[protocol] = factory
    if defaults is not None:
        _DEFAULTS[protocol] = defaults


def options_for(url: str, by_protocol: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The options a root or pointer target at ``url`` opens with: those the settings give
    its protocol (``storage_options``), over its backend's defaults."""
    protocol = protocol_of(url)
    given = by_protocol.get(protocol) or {}
    defaults = _DEFAULTS.get(protocol)
    return defaults(given) if defaults is not None else dict(given)


def backend_for(fs: Any, root: str) -> Backend:
    """The registered backend for an fsspec filesystem's protocol, opened at ``root``."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    for protocol in protocols:
        factory = _BACKENDS.get(protocol)
        if factory is not None:
            return factory(fs, root)
    return FilesystemBackend(fs, root)
