"""Adding, listing, verifying and pruning versions on this machine."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from hypercore.errors import UserError, plural
from hypercore.repo import btrfs, manifest
from hypercore.repo.layout import Repo, locked, next_version
from hypercore.sizes import human

BLOCK = 64 * 1024  # compare and write in 64 KiB blocks


def update_in_place(src: Path, dst: Path) -> int:
    """Make dst's content equal src's, writing only the blocks that differ.

    dst is a file in a fresh snapshot of the previous version, so the blocks
    left alone stay shared with it and `btrfs send -p` only sends the rest.
    Zero blocks past dst's end stay holes. Returns the bytes written.
    """
    written = 0
    size = src.stat().st_size
    exists = dst.exists()
    with open(src, "rb") as fi, open(dst, "r+b" if exists else "wb") as fo:
        old_size = os.fstat(fo.fileno()).st_size
        fo.truncate(size)
        pos = 0
        while block := fi.read(BLOCK):
            if pos < old_size:
                fo.seek(pos)
                if fo.read(len(block)) != block:
                    fo.seek(pos)
                    fo.write(block)
                    written += len(block)
            elif block.count(0) != len(block):
                fo.seek(pos)
                fo.write(block)
                written += len(block)
            pos += len(block)
        fo.flush()
        os.fsync(fo.fileno())
    return written


def cleanup_staging(repo: Repo, name: str) -> list[Path]:
    """Remove what an interrupted add/receive of name left (call under the name's lock)."""
    stale = repo.stale_staging(name)
    for d in stale:
        btrfs.delete_tree(d)
    return stale


def check_file_name(file: Path) -> str:
    base = file.name
    if base == manifest.MANIFEST or base.startswith(".") or "\n" in base:
        raise UserError(f"cannot store a file named {base!r}", hint="rename the image file first")
    return base


def add(repo: Repo, name: str, file: Path) -> str:
    if not file.is_file():
        raise UserError(f"{file} is not a file", hint="give the path of a qcow2 or raw image")
    image = check_file_name(file)
    btrfs.require_btrfs(repo.root)
    repo.root.mkdir(parents=True, exist_ok=True)
    with locked(repo, name):
        cleanup_staging(repo, name)
        have = repo.versions(name)
        v = next_version(have)
        stage = repo.staging(name, v, "add")
        try:
            sub = stage / "snapshot"
            if have:
                btrfs.snapshot(repo.subvol(name, have[-1]), sub)
                old = manifest.load(sub).get("image")
                if old and old != image:
                    (sub / old).rename(sub / image)
            else:
                btrfs.create(sub)
            written = update_in_place(file, sub / image)
            created = time.strftime("%Y-%m-%d %H:%M:%S")
            m = manifest.build(name, v, image, sub, f"{socket.gethostname()}:{file.absolute()}", created)
            manifest.write(sub, m)
            btrfs.make_readonly(sub)
            repo.name_dir(name).mkdir(exist_ok=True)
            stage.rename(repo.version_dir(name, v))
        except BaseException:
            btrfs.delete_tree(stage)
            raise
    base = f"on top of {have[-1]}, {human(written)} changed" if have else "first version"
    return f"added {name}@{v}: {image}, {human(m['size'])} ({base})"


def listing(repo: Repo, name: str | None) -> list[dict]:
    rows = []
    for n in [name] if name else repo.names():
        for v in repo.versions(n):
            try:
                m = manifest.load(repo.subvol(n, v))
            except (OSError, ValueError):
                m = {}
            rows.append({"name": n, "version": v, "created": m.get("created", "?"),
                         "size": m.get("size", 0), "image": m.get("image", "?"),
                         "source": m.get("source", "?")})
    return rows


def verify(repo: Repo, name: str, v: str) -> str:
    found = manifest.problems(repo.subvol(name, v))
    if found:
        raise UserError(f"{name}@{v} fails verification: " + "; ".join(found),
                        hint="replace it from a peer that holds a good copy (hypercore repo pull)")
    n = len(manifest.load(repo.subvol(name, v))["files"])
    return f"{name}@{v}: {plural(n, 'file')} {'matches' if n == 1 else 'match'} the manifest"


def inventory(repo: Repo, name: str | None = None) -> dict:
    """What this machine holds (what a peer's `_inventory` answers): name -> version -> manifest sha256."""
    out: dict[str, dict[str, str]] = {}
    for n in [name] if name else repo.names():
        out[n] = {v: manifest.digest(repo.subvol(n, v)) for v in repo.versions(n)}
    return out


def prune(repo: Repo, name: str, keep: int, in_use) -> list[str]:
    """Delete all but the newest `keep` versions, never one in use. in_use(v) -> reasons."""
    lines = []
    with locked(repo, name):
        cleanup_staging(repo, name)
        have = repo.versions(name)
        if not have:
            raise UserError(f"the repository has no image named {name!r}", hint="see: hypercore repo list")
        for v in have[:-keep] if keep < len(have) else []:
            users = in_use(v)
            if users:
                lines.append(f"kept {name}@{v}: in use by {', '.join(users)}")
                continue
            btrfs.delete_tree(repo.version_dir(name, v))
            lines.append(f"pruned {name}@{v}")
    return lines or [f"nothing to prune: {name} has {plural(len(have), 'version')}"]
