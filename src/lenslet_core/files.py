"""Changing the images themselves: add one, move one, delete one, each with the files lenslet
keeps for it (its sidecar and its thumbnail go where the image goes).

Nothing here replaces an existing file unless asked: a new image is created only where there is
none, and a move never lands on an existing image, sidecar or thumbnail unless ``overwrite`` says
so (then the image there is deleted with its sidecar and thumbnail first, as by a delete).
"""

from __future__ import annotations

import contextlib

from . import paths
from .errors import AlreadyExists, LensletError, NotFound
from .imaging import Imaging
from .storage import Storage
from .thumbnails import ThumbnailStore

__all__ = ["create_image", "delete_image", "move_image"]


async def create_image(
    storage: Storage, imaging: Imaging, image: str, data: bytes, *, overwrite: bool = False
) -> None:
    """Store a new image at ``image`` (a logical image path), atomically, after checking that
    its content is a JPEG, PNG or WebP lenslet can read (corrupt files and pixel bombs are
    refused before anything is written)."""
    await storage.ensure_writable(image)
    await imaging.analyze(data)
    if overwrite:
        await storage.write(image, data)
    else:
        await storage.create(image, data)


async def move_image(
    storage: Storage,
    thumbs: ThumbnailStore,
    image: str,
    target: str,
    *,
    overwrite: bool = False,
) -> None:
    """Move an image, then its sidecar and thumbnail if it has them. Refuses a target where an
    image, sidecar or thumbnail already is, before moving anything, unless ``overwrite``."""
    await storage.info(image)  # NotFound first, not half a move
    if image == target:
        return
    companions = [paths.sidecar_name, paths.thumbnail_name]
    if overwrite:
        await storage.ensure_writable(image)
        with contextlib.suppress(NotFound):
            await delete_image(storage, thumbs, target)
        for companion in companions:  # strays of an image that was already gone
            await storage.delete(companion(target))
    for name in [target, *(f(target) for f in companions)]:
        try:
            await storage.info(name)
        except NotFound:
            continue
        raise AlreadyExists(f"{name!r} already exists; nothing was moved", path=name)
    await storage.move(image, target)
    for companion in companions:
        try:
            await storage.move(companion(image), companion(target))
        except NotFound:
            continue
    if thumbs.cache is not None:
        with contextlib.suppress(LensletError):  # a missing one is made again on request
            await thumbs.cache.move(paths.thumbnail_name(image), paths.thumbnail_name(target))


async def delete_image(storage: Storage, thumbs: ThumbnailStore, image: str) -> None:
    """Delete an image with its thumbnail and sidecar. The sidecar goes last: a delete cut
    short leaves at worst an orphan sidecar (health lists it), never an image without its
    tags."""
    await storage.info(image)
    await storage.delete(paths.thumbnail_name(image))
    if thumbs.cache is not None:
        with contextlib.suppress(LensletError):
            await thumbs.cache.delete(paths.thumbnail_name(image))
    await storage.delete(image)
    await storage.delete(paths.sidecar_name(image))
