"""Changing a gallery's images: upload, move, delete. Each goes through :mod:`companions` (the
image with its sidecar and thumbnail, crash-safe), then keeps the gallery in step: the rollup
edited, the folders' manifests rebuilt, the change published.

Where a destination names a folder or an image is one rule, :func:`destination`, for uploads
and moves alike: an existing folder takes the image under its own name; anything else that is
named like an image is the image's new path; any other name is a folder to create.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from . import paths
from .companions import create_image, delete_image, move_image
from .errors import InvalidPath, LensletError, NotFound
from .gallery import Gallery
from .rollup import RollupItem
from .sidecar import Sidecar, update_sidecar
from .work import changed

__all__ = ["delete", "destination", "move", "upload"]

log = logging.getLogger("lenslet")


async def destination(gallery: Gallery, target: str, name: str) -> tuple[str, bool]:
    """The image path ``target`` means for an image named ``name`` (see the module docstring),
    and whether ``target`` exists (if not, the image's folder may have to be made)."""
    folder = paths.normalize(target)
    try:
        into = (await gallery.storage.info(folder)).is_folder if folder else True
        found = True
    except NotFound:
        # Not there yet: named like an image, it is the new image's path; else a folder.
        into, found = not paths.is_image_name(paths.split(folder)[1]), False
    if into and not name:
        raise InvalidPath(
            f"{folder or '/'!r} is a folder: the image needs a name (a filename, or the "
            "image's full path as the destination)",
            path=folder,
        )
    return paths.new_item_path(paths.join(folder, name) if into else folder), found


async def _make_folder_for(gallery: Gallery, image: str) -> None:
    """Make the folder a new image goes into (a trash folder, a new album)."""
    parent = paths.parent(image)
    paths.new_folder_path(parent)
    await gallery.storage.ensure_writable(image)
    await gallery.storage.make_folder(parent)


async def upload(
    gallery: Gallery, target: str, name: str, data: bytes, *, overwrite: bool = False
) -> str:
    """Add an image (checked by content first) at ``target`` (a folder, or the image's path:
    :func:`destination`); refuses to replace one unless ``overwrite``. Its logical path."""
    image, found = await destination(gallery, target, name)
    if not found:
        await gallery.imaging.analyze(data)  # no folder is made for what is not an image
        await _make_folder_for(gallery, image)
    await create_image(gallery.storage, gallery.imaging, image, data, overwrite=overwrite)
    gallery.thumbs.recent.forget(image)  # a replaced image's thumbnail is made again
    await changed(gallery, {paths.parent(image)})
    return image


async def move(gallery: Gallery, source: str, target: str, *, overwrite: bool = False) -> str:
    """Move an image with its sidecar and thumbnail to ``target`` (:func:`destination`; a
    folder that is not there yet is created, e.g. a trash folder); an image there is replaced
    only with ``overwrite``. The previous path is recorded in the sidecar as
    ``original_position``, so a client can put the image back."""
    image = paths.item_path(source)
    moved, found = await destination(gallery, target, paths.split(image)[1])
    if not found:
        await gallery.storage.info(image)  # a missing image creates no folder
        await _make_folder_for(gallery, image=moved)
    # No sidecar write to either image while it moves (it would be left behind or lost); locks
    # taken in path order, so two moves between the same images cannot deadlock.
    async with contextlib.AsyncExitStack() as stack:
        for key in sorted({image, moved}):
            await stack.enter_async_context(gallery.writes(key))
        await move_image(gallery.storage, gallery.thumbs, image, moved, overwrite=overwrite)
        recorded = await _record_position(gallery, image, moved)
    gallery.rollup.remove(image)
    if overwrite:
        gallery.rollup.remove(moved)
    if recorded is not None:
        await gallery.load_state()
        gallery.rollup.edit(RollupItem.of(moved, recorded))
    await changed(gallery, {paths.parent(image), paths.parent(moved)})
    return moved


async def _record_position(gallery: Gallery, image: str, moved: str) -> Sidecar | None:
    """Note a moved image's previous path in its sidecar (``original_position``). The move has
    happened: a sidecar that cannot take the note (unreadable, a name too long for one) leaves
    the move as it is, and the note is skipped."""
    if moved == image:
        return None
    gallery.note_sidecar_written(paths.parent(moved))
    writer = gallery.settings.writer
    try:
        written = await update_sidecar(
            gallery.storage, moved, {"original_position": image}, writer=writer
        )
    except LensletError as exc:
        log.warning("moved %r to %r; original_position not recorded: %s", image, moved,
                    exc.message)  # fmt: skip
        return None
    return written.sidecar


async def delete(gallery: Gallery, images: Sequence[str]) -> list[str]:
    """Delete images with their sidecars and thumbnails; those deleted (images that are not
    there are skipped)."""
    checked = [paths.item_path(image) for image in images]  # all valid, or none deleted
    deleted = []
    for image in checked:
        try:
            await delete_image(gallery.storage, gallery.thumbs, image)
        except NotFound:
            continue
        gallery.rollup.remove(image)
        deleted.append(image)
    await changed(gallery, {paths.parent(image) for image in deleted})
    return deleted
