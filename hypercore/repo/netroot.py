"""Publishing a version as a network-boot root (`hypercore repo publish
NAME@vN --netboot`): its file, a squashfs, copied (a reflink on the same BTRFS
filesystem: no data is copied) into the netboot HTTP root as
roots/NAME@vN.squashfs, atomically; hypercore-netboot's menu then offers it.

REPO/NAME/vN/netboot.json records it, written before the file appears and
removed after it is gone, so a served root is always held: prune keeps it.
The file's SHA-256 (from the version's manifest, checked just before) is
recorded next to it (NAME@vN.squashfs.sha256) for the menu's kernel line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hypercore import digest
from hypercore.errors import UserError
from hypercore.repo import manifest
from hypercore.repo.layout import Repo, locked
from hypercore.run import run

MAGIC = b"hsqs"          # a squashfs superblock starts with it (little-endian)
ROOTS = "roots"          # under the HTTP root; hypercore_netboot.roots lists it
RECORD = "netboot.json"


def http_root(option: str | None = None) -> Path:
    """--http-root, else hypercore-netboot's: $HYPERCORE_NETBOOT_HTTP_ROOT or /var/lib/hypercore/netboot."""
    from hypercore_netboot.apply import Paths
    return Path(Paths.from_env(http_root=option).http_root).absolute()


def target(root: Path, name: str, v: str) -> Path:
    return root / ROOTS / f"{name}@{v}.squashfs"


def record(repo: Repo, name: str, v: str) -> Path:
    return repo.version_dir(name, v) / RECORD


def published(repo: Repo, name: str, v: str) -> Path | None:
    """The file name@v is published as, when it is (the record names it and it exists)."""
    try:
        path = Path(json.loads(record(repo, name, v).read_text())["file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if path.exists() else None


def squashfs_file(repo: Repo, name: str, v: str) -> Path:
    """name@v's image file when it is a squashfs; a UserError otherwise."""
    sub = repo.subvol(name, v)
    image = manifest.load(sub)["image"]
    with open(sub / image, "rb") as f:
        head = f.read(len(MAGIC))
    if head != MAGIC:
        raise UserError(f"{name}@{v} is not a squashfs image ({image} does not start with 'hsqs'), "
                        "so it cannot be a netboot root",
                        hint="add a root file system made with mksquashfs as a version, "
                             "or publish this one for VMs with --as IMAGE")
    return sub / image


def publish(repo: Repo, name: str, v: str, root: Path) -> str:
    src = squashfs_file(repo, name, v)
    problems = manifest.problems(repo.subvol(name, v))
    if problems:
        raise UserError(f"{name}@{v} fails verification: {'; '.join(problems)}",
                        hint="publish another version, or pull a good copy from a peer")
    dst = target(root, name, v)
    with locked(repo, name):
        if published(repo, name, v) == dst:
            return f"{name}@{v} is already published as the netboot root {dst}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        rec = record(repo, name, v)
        rec.write_text(json.dumps({"file": str(dst), "published": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}")
        try:
            run(["cp", "--reflink=auto", "--sparse=auto", "--", str(src), str(tmp)])
            tmp.chmod(0o644)
            tmp.rename(dst)
            held = manifest.load(repo.subvol(name, v))
            digest.write_record(dst, held["files"][held["image"]]["sha256"])
        except BaseException:
            tmp.unlink(missing_ok=True)
            dst.unlink(missing_ok=True)
            rec.unlink(missing_ok=True)
            raise
    return f"published {name}@{v} as the netboot root {dst}"


def unpublish(repo: Repo, name: str, v: str, root: Path) -> str:
    with locked(repo, name):
        rec = record(repo, name, v)
        dst = published(repo, name, v) or target(root, name, v)
        if not rec.exists() and not dst.exists():
            raise UserError(f"{name}@{v} is not published as a netboot root",
                            hint="see the published roots: ls " + str(root / ROOTS))
        dst.unlink(missing_ok=True)
        Path(digest.record_path(dst)).unlink(missing_ok=True)
        rec.unlink(missing_ok=True)
    return f"unpublished the netboot root {name}@{v} ({dst} removed)"


def menu(root: Path):
    """hypercore-netboot's menu writer for this HTTP root, checked before anything changes."""
    from hypercore_netboot.roots import menu_writer
    return menu_writer(str(root))
