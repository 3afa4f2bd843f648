"""The btrfs commands the repository uses, as argument lists and thin calls."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypercore.errors import UserError
from hypercore.run import run


def fs_type(path: Path) -> str:
    """The filesystem type of the nearest existing ancestor of path ('btrfs', 'ext4', ...)."""
    p = path
    while not p.exists():
        p = p.parent
    return run(["stat", "-f", "-c", "%T", str(p)]).stdout.strip()


def require_btrfs(root: Path) -> None:
    kind = fs_type(root)
    if kind != "btrfs":
        raise UserError(f"the repository {root} is not on a BTRFS filesystem (it is on {kind})",
                        hint="put it on BTRFS (the appliance's /var/lib is), or set --repo-dir / HYPERCORE_REPO_DIR")


def create_argv(path: Path) -> list[str]:
    return ["btrfs", "-q", "subvolume", "create", str(path)]


def snapshot_argv(src: Path, dst: Path) -> list[str]:
    """A writable snapshot (the new version starts as the previous one)."""
    return ["btrfs", "-q", "subvolume", "snapshot", str(src), str(dst)]


def delete_argv(path: Path) -> list[str]:
    return ["btrfs", "-q", "subvolume", "delete", str(path)]


def readonly_argv(path: Path) -> list[str]:
    return ["btrfs", "property", "set", "-ts", str(path), "ro", "true"]


def send_argv(subvol: Path, parent: Path | None) -> list[str]:
    return ["btrfs", "-q", "send", *(["-p", str(parent)] if parent else []), str(subvol)]


def receive_argv(into: Path) -> list[str]:
    """--chroot: the stream comes from a peer; its paths cannot leave `into`."""
    return ["btrfs", "-q", "receive", "--chroot", str(into)]


def is_subvolume(path: Path) -> bool:
    """A subvolume's root directory has inode number 256 on BTRFS."""
    try:
        return path.is_dir() and not path.is_symlink() and path.stat().st_ino == 256
    except OSError:
        return False


def is_readonly(path: Path) -> bool:
    out = run(["btrfs", "property", "get", "-ts", str(path), "ro"]).stdout.strip()
    return out == "ro=true"


def create(path: Path) -> None:
    run(create_argv(path))


def snapshot(src: Path, dst: Path) -> None:
    run(snapshot_argv(src, dst))


def make_readonly(path: Path) -> None:
    run(readonly_argv(path))


def delete_tree(path: Path) -> None:
    """Remove a staging or version directory: its subvolumes first, then the rest."""
    if not path.exists():
        return
    for sub in sorted((p for p in path.rglob("*") if is_subvolume(p)), key=lambda p: -len(p.parts)):
        run(delete_argv(sub))
    shutil.rmtree(path)
