"""The S3 backend: what lenslet needs of S3 beyond fsspec's file API — conditional writes, the
object's ETag as the version of a document, a root check that says what is wrong, and S3's
errors in words a user can act on (its error table, :func:`s3_error`).

s3fs (the ``s3`` extra) is the client; this module only adds requests fsspec has no word
for, through s3fs's own botocore client (so its credentials, retries and endpoint apply). Its
blocking methods run in the storage seam's worker threads like every other storage call.
"""

from __future__ import annotations

import asyncio
import errno
import re
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from .errors import (
    LensletError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    SettingsError,
    StorageError,
)
from .filesystem import REMOTE_IO_CONCURRENCY, FilesystemBackend

__all__ = [
    "S3Backend",
    "check_bucket_name",
    "error_code",
    "s3_error",
    "for_target",
    "storage_options",
    "with_defaults",
]

T = TypeVar("T")

#: Attempts botocore makes on throttling (SlowDown, 503), 5xx answers and connection errors,
#: with backoff.
RETRY_ATTEMPTS = 3
#: Connections botocore keeps open to the endpoint. Its default of 10 is below what one storage
#: has in flight (``REMOTE_IO_CONCURRENCY`` reads and writes, and as many listings), and a
#: request past it waits for a connection without counting as sent: on a bucket 100 ms away a
#: first index of 1,000 images took 31 s with 10, 23 s with this.
POOL_CONNECTIONS = 4 * REMOTE_IO_CONCURRENCY
_PRECONDITION = ("PreconditionFailed", "ConditionalRequestConflict")


def storage_options(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """s3fs options in the words of the CLI: an S3-compatible endpoint (else the standard
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` environment, which botocore reads), a region
    and an AWS profile; the credentials come from the standard chain (environment, config
    files, instance role)."""
    options: dict[str, Any] = {}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if region:
        options["client_kwargs"] = {"region_name": region}
    if profile:
        options["profile"] = profile
    return options


#: What lenslet sets unless told otherwise: timeouts and attempts that make a request to an
#: endpoint that is down fail within seconds, not minutes (botocore's standard retries back
#: off on throttling and 5xx answers).
DEFAULTS: dict[str, Any] = {
    "config_kwargs": {
        "connect_timeout": 3.0,
        "read_timeout": 30.0,
        "retries": {"max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
        "max_pool_connections": POOL_CONNECTIONS,
    },
}


def with_defaults(given: Mapping[str, Any]) -> dict[str, Any]:
    """The options given, over :data:`DEFAULTS` (``config_kwargs`` and ``client_kwargs``
    merged key by key)."""
    merged: dict[str, Any] = {**DEFAULTS, **given}
    for nested in ("config_kwargs", "client_kwargs"):
        if nested in given and nested in DEFAULTS:
            merged[nested] = {**DEFAULTS[nested], **given[nested]}
    return merged


def for_target(
    options: Mapping[str, Any], *, endpoint_url: str | None, region: str | None
) -> dict[str, Any]:
    """A pointer target's options: the root's, with the endpoint and region the pointer's
    config names (if any)."""
    target = dict(options)
    if endpoint_url:
        target["endpoint_url"] = endpoint_url
    if region:
        target["client_kwargs"] = {**target.get("client_kwargs", {}), "region_name": region}
    return target


#: S3's rules for bucket names (3-63 lowercase letters, digits, dots and hyphens).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_bucket_name(bucket: str) -> None:
    """Refuse a name S3 would refuse, as a usage error, before any request is made."""
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise SettingsError(
            f"{bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, dots "
            "and hyphens, starting and ending with a letter or digit)"
        )


def _speaks_s3(exc: BaseException) -> bool:
    """Whether an error answer came from an S3 server (they send ``x-amz-*`` headers, moto
    ``x-amzn-*``)."""
    for candidate in (exc, exc.__cause__):
        response = getattr(candidate, "response", None)
        if isinstance(response, Mapping):
            headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            return any(str(name).lower().startswith("x-amz") for name in headers)
    return True  # nothing to tell by: believe it


def error_code(exc: BaseException) -> str | None:
    """The S3 error code (``AccessDenied``, ``NoSuchBucket``, …) behind an exception, whether
    botocore's own or the OSError s3fs made of it."""
    for candidate in (exc, exc.__cause__):
        response = getattr(candidate, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            return str(code) if code is not None else None
    return None


def s3_error(exc: BaseException, path: str, where: str) -> LensletError | None:
    """lenslet's error for an S3 failure (``None``: not one this module knows); ``where`` names
    the bucket and endpoint, so the message says what to check."""
    code = error_code(exc)
    name = type(exc).__name__
    shown = path or "/"
    if code in _PRECONDITION:
        return PreconditionFailed(f"{shown!r} changed since it was read", path=path)
    if code == "NoSuchBucket":
        return NotFound(
            f"{where}: the bucket does not exist (check the bucket name, --endpoint-url and "
            "--region)",
            path=path,
        )
    if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return PermissionDenied(
            f"{where}: access to {shown!r} denied ({code}; check the credentials — "
            "AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID — and the bucket's policy)",
            path=path,
        )
    if name in ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound"):
        return PermissionDenied(
            f"{where}: no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE or --profile), or run where an "
            "instance role is available",
            path=path,
        )
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return StorageError(
            f"{where}: cannot reach the S3 endpoint ({exc}); check --endpoint-url and the network",
            path=path,
        )
    if name == "InvalidEndpointError" or (isinstance(exc, ValueError) and "endpoint" in str(exc)):
        return StorageError(f"{where}: {exc} (check --endpoint-url)", path=path)
    if type(exc).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp"):
        # A broken stream, a timeout, a reply botocore could not read: a failed request.
        return StorageError(f"{where}: S3 request for {shown!r} failed: {exc}", path=path)
    return None


class S3Backend(FilesystemBackend):
    """A bucket prefix through s3fs, with what fsspec has no word for: reads in one GET with the
    object's ETag as the version, conditional PUTs, a bucket check that says what is wrong, and
    S3's errors in words a user can act on. Paths on the filesystem are ``bucket/key``."""

    def __init__(self, fs: Any, root: str) -> None:
        check_bucket_name(root.split("/", 1)[0])
        super().__init__(fs, root)
        # botocore's own retries (storage_options) are the whole budget: s3fs's loop of five
        # more on top would turn an endpoint that is down into minutes of waiting.
        fs.retries = 1

    @property
    def where(self) -> str:
        bucket = self.root.split("/", 1)[0]
        endpoint = getattr(self.fs, "endpoint_url", None) or self.fs.client_kwargs.get(
            "endpoint_url"
        )
        client = getattr(self.fs, "s3", None)  # once connected: also an endpoint from the env
        if not endpoint and client is not None:
            endpoint = getattr(client.meta, "endpoint_url", None)
        return f"s3://{bucket}" + (f" at {endpoint}" if endpoint else "")

    def error(self, exc: Exception, path: str) -> LensletError | None:
        return s3_error(exc, path, self.where)

    def sign(self, path: str, seconds: int) -> str | None:
        """A presigned GET of the object, good for ``seconds`` (signed here, no request)."""
        url: str = self.fs.sign(self.full(path), expiration=seconds)
        return url

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one of s3fs's coroutines on its event loop thread, from a worker thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.fs.loop).result()

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self._wait(self.fs._call_s3(method, **kwargs))

    def _split(self, path: str) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(self.full(path))
        return bucket, key

    def check_root(self) -> None:
        """One HEAD on the bucket: reachable, existing and allowed, or an error that says
        which of these is not so (a prefix with nothing in it yet is a fine, empty gallery)."""
        bucket, _ = self._split("")
        try:
            self._call("head_bucket", Bucket=bucket)
        except FileNotFoundError as exc:
            if not _speaks_s3(exc):
                raise StorageError(
                    f"{self.where}: the endpoint does not answer like S3 (its 404 carries "
                    "no S3 headers); check --endpoint-url",
                    path="",
                ) from exc
            raise NotFound(
                f"{self.where}: the bucket does not exist (check the bucket name, "
                "--endpoint-url and --region)",
                path="",
            ) from exc

    def _info(self, full: str) -> Mapping[str, Any]:
        # refresh: another writer may have made or removed it since a listing was cached
        found: Mapping[str, Any] = self.fs.info(full, refresh=True)
        return found

    def read(self, path: str) -> bytes:
        return self.read_versioned(path)[0]  # one GET (s3fs's cat_file may HEAD first)

    def read_versioned(self, path: str) -> tuple[bytes, str]:
        """An object's bytes and its ETag, in one GET (read and closed on s3fs's loop)."""
        bucket, key = self._split(path)

        async def fetch() -> tuple[bytes, str]:
            answer = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            body = answer["Body"]
            try:
                data: bytes = await body.read()
            finally:
                body.close()
            return data, str(answer["ETag"]).strip('"')

        return self._wait(fetch())

    def write_if(self, path: str, data: bytes, expected: str | None) -> str:
        """PUT only if the stored object's ETag is ``expected`` (``None``: only if there is no
        object); returns the new ETag. S3 checks the condition and writes in one step."""
        bucket, key = self._split(path)
        full = self.full(path)
        condition = {"IfMatch": f'"{expected}"'} if expected else {"IfNoneMatch": "*"}
        try:
            answer = self._call("put_object", Bucket=bucket, Key=key, Body=data, **condition)
        except FileExistsError as exc:  # s3fs's word for a failed If-None-Match
            raise PreconditionFailed(f"{full!r} was created meanwhile", path=full) from exc
        except FileNotFoundError as exc:  # If-Match on an object deleted meanwhile
            if error_code(exc) == "NoSuchBucket":
                raise
            raise PreconditionFailed(f"{full!r} was deleted meanwhile", path=full) from exc
        except OSError as exc:
            if error_code(exc) in _PRECONDITION:
                raise PreconditionFailed(f"{full!r} changed since it was read", path=full) from exc
            raise
        self.fs.invalidate_cache(full)
        return str(answer["ETag"]).strip('"')

    def create(self, path: str, data: bytes) -> None:
        """PUT only where there is no object yet (``FileExistsError`` otherwise): one
        conditional PUT."""
        try:
            self.write_if(path, data, None)
        except PreconditionFailed as exc:
            raise FileExistsError(errno.EEXIST, "exists", self.full(path)) from exc

    def make_folder(self, path: str) -> None:
        pass  # an object store has no folders to make
