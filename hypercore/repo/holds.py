"""Which versions are in use, and publishing a version as a golden image.

A version is in use when a golden image was published from it (a hold file
REPO/NAME/vN/holds/IMAGE saying `repo:NAME@vN`, or an image whose recorded
source is a file of the version), when it is published as a netboot root
(netroot.py), or when a VM definition's disk, or a file in
its backing chain, is a file of the version. prune keeps those.
"""

from __future__ import annotations

from pathlib import Path

from hypercore import images, names, storage, vms
from hypercore.definition import FileDisk
from hypercore.errors import UserError
from hypercore.repo import manifest, netroot
from hypercore.repo.layout import Repo, locked
from hypercore.state import StateDir
from hypercore.storage import Backend


def origin(name: str, v: str) -> str:
    return f"repo:{name}@{v}"


def _inside(path: str, top: Path) -> bool:
    try:
        return Path(path).absolute().is_relative_to(top)
    except (TypeError, ValueError):
        return False


def users(repo: Repo, state: StateDir, name: str, v: str) -> list[str]:
    top = repo.version_dir(name, v)
    published = {img.name: img for img in images.all_images(state)}
    found = []
    holds = repo.holds(name, v)
    for hold in sorted(holds.iterdir()) if holds.is_dir() else []:
        if hold.name in published:
            found.append(f"image {hold.name}")
    for img in published.values():
        if _inside(img.source, top) and f"image {img.name}" not in found:
            found.append(f"image {img.name}")
    served = netroot.published(repo, name, v)
    if served:
        found.append(f"netboot root {served}")
    for defn in vms.all_definitions(state):
        files = [d.path for d in defn.disks if isinstance(d, FileDisk)]
        for disk in defn.disks:
            files += storage.backing_files(disk)
        if any(_inside(f, top) for f in files):
            found.append(f"VM {defn.name}")
    return found


def publish(repo: Repo, state: StateDir, name: str, v: str, image: str, backend: Backend) -> str:
    """Import name@v's image file as the golden image `image` (verified first)."""
    names.image_name(image)
    if images.get(state, image) is not None:
        raise UserError(f"an image named {image!r} already exists", hint="choose another name with --as")
    sub = repo.subvol(name, v)
    problems = manifest.problems(sub)
    if problems:
        raise UserError(f"{name}@{v} fails verification: {'; '.join(problems)}",
                        hint="publish another version, or pull a good copy from a peer")
    src = sub / manifest.load(sub)["image"]
    with locked(repo, name):
        hold = repo.holds(name, v) / image
        hold.parent.mkdir(exist_ok=True)
        hold.write_text(origin(name, v) + "\n")
        try:
            _, msg = images.import_image(state, src, image, backend)
        except BaseException:
            hold.unlink(missing_ok=True)
            raise
    return f"{msg} (origin {origin(name, v)})"
