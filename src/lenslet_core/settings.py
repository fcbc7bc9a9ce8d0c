"""Settings: one frozen object, passed in explicitly, checked once at construction."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .errors import SettingsError
from .local import usable_cores
from .s3 import storage_options

__all__ = ["Settings"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """How lenslet behaves. Every field has a sane default; invalid values fail at once."""

    #: Items per manifest page; folders above it are written as ``_index_0.json`` … .
    page_size: int = 5000
    #: Images with more pixels than this are refused before decoding (decompression bombs).
    max_pixels: int = 200_000_000
    #: Images larger than this many bytes are skipped instead of read into memory.
    max_file_bytes: int = 512 * 1024 * 1024
    #: Concurrent blocking storage calls of each kind: listings, reads, and on remote storage
    #: writes each have this many. ``None``: the usable cores on local disk, 16 on remote
    #: storage; raise it for a NAS mount with high latency.
    io_concurrency: int | None = None
    #: Concurrent CPU-bound calls (probing, hashing, thumbnails); defaults to the usable cores.
    cpu_concurrency: int = dataclasses.field(default_factory=usable_cores)
    #: Seconds a manifest cached in memory is served without asking storage whether it changed.
    manifest_ttl: float = 2.0
    #: Written into ``updatedBy`` when a writer does not name itself.
    writer: str = "lenslet"
    #: Refuse every write (sidecars, manifests) under this root.
    readonly: bool = False
    #: Longest edge of a thumbnail, in pixels (smaller images are never upscaled).
    thumb_size: int = 256
    #: WebP quality of thumbnails, 1–100.
    thumb_quality: int = 70
    #: Where thumbnails go when an image's folder cannot take them (a read-only mount or
    #: pointer, a bucket without write rights): a local path or fsspec URL. ``None``: nowhere,
    #: such images get thumbnails made on request and not kept.
    thumb_cache: str | None = None
    #: Whether an index run makes the thumbnails that are missing (in the same read of each
    #: image that gives its header and hash).
    thumbnails: bool = True
    #: Jobs waiting in the background queue at most; beyond it, submitting waits (or is refused
    #: with ``queue_full`` when the caller cannot wait).
    queue_size: int = 10_000
    #: Attempts of a job that failed on a transient storage error, before it counts as failed.
    job_attempts: int = 3
    #: Local folders that pointer folders may target (a pointer to any other local path is
    #: refused and reported). S3 targets need no entry: the credentials bound them.
    pointer_roots: tuple[str, ...] = ()
    #: Seconds between two listings of a root that has no change events (S3) while watching.
    watch_interval: float = 30.0
    #: Options of each storage protocol, as its fsspec filesystem takes them, for roots and
    #: pointer targets of that protocol: ``{"s3": {"endpoint_url": "http://127.0.0.1:9000",
    #: "client_kwargs": {"region_name": "eu-west-1"}, "profile": "photos"}}``. S3's timeouts
    #: and retries have defaults that fail a request to an endpoint that is down within
    #: seconds (``lenslet_core.s3.DEFAULTS``; override them under ``config_kwargs``).
    #: Credentials come from the standard chain: environment, config files, instance role.
    storage_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        names = ["page_size", "max_pixels", "max_file_bytes", "thumb_size", "queue_size"]
        names.append("job_attempts")
        if self.io_concurrency is not None:
            names.append("io_concurrency")
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SettingsError(f"setting {name} must be a positive integer, not {value!r}")
        cpu = self.cpu_concurrency
        if not isinstance(cpu, int) or isinstance(cpu, bool) or cpu < 1:
            raise SettingsError(f"setting cpu_concurrency must be a positive integer, not {cpu!r}")
        ttl = self.manifest_ttl
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 <= ttl < math.inf:
            raise SettingsError(f"setting manifest_ttl must be a number >= 0, not {ttl!r}")
        every = self.watch_interval
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not 0 < every < 1e6:
            raise SettingsError(f"setting watch_interval must be seconds > 0, not {every!r}")
        roots = self.pointer_roots
        if not isinstance(roots, tuple) or not all(isinstance(r, str) and r for r in roots):
            raise SettingsError(f"setting pointer_roots must be a tuple of paths, not {roots!r}")
        options = self.storage_options
        if not isinstance(options, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Mapping) for k, v in options.items()
        ):
            raise SettingsError(
                "setting storage_options must map protocols to options, e.g. "
                f'{{"s3": {{"endpoint_url": ...}}}}, not {options!r}'
            )
        if not isinstance(self.writer, str) or not self.writer:
            raise SettingsError(f"setting writer must be a non-empty string, not {self.writer!r}")
        for flag in ("readonly", "thumbnails"):
            if not isinstance(getattr(self, flag), bool):
                value = getattr(self, flag)
                raise SettingsError(f"setting {flag} must be true or false, not {value!r}")
        quality = self.thumb_quality
        if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
            raise SettingsError(f"setting thumb_quality must be 1 to 100, not {quality!r}")
        cache = self.thumb_cache
        if cache is not None and (not isinstance(cache, str) or not cache):
            raise SettingsError(f"setting thumb_cache must be a path or URL, not {cache!r}")

    def with_s3(
        self,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
    ) -> Settings:
        """A copy whose S3 options also name an endpoint, a region or a profile (those
        given)."""
        given = storage_options(endpoint_url=endpoint_url, region=region, profile=profile)
        if not given:
            return self
        current = dict(self.storage_options.get("s3", {}))
        if "client_kwargs" in given and "client_kwargs" in current:
            given["client_kwargs"] = {**current["client_kwargs"], **given["client_kwargs"]}
        return self.replace(storage_options={**self.storage_options, "s3": {**current, **given}})

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (and checked again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
