"""Put what clients download where the servers serve it.

- HTTP root (/var/lib/hypercore/netboot): vmlinuz and initrd.img (the image's
  /usr/lib/hypercore/netboot, built with it) and root.squashfs, a copy of this
  disk's hypercore-netroot partition (the image's root as squashfs).
- TFTP root (/var/lib/hypercore/tftpboot): the iPXE binaries, and vmlinuz and
  initrd.img once more for clients that can only speak TFTP.

Both roots are on the BTRFS data layout. The squashfs is copied only when the
partition holds a different one than last time (its superblock's time and
size), so a restart is cheap; copies are written to a temporary name first.
The squashfs's SHA-256 is computed while it is copied and recorded next to it
(root.squashfs.sha256): the menu puts it on the clients' kernel command line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hypercore import digest, squashfs
from hypercore.errors import UserError
from hypercore.run import run

NETROOT_LABEL = "hypercore-netroot"
IMAGE_FILES = Path("/usr/lib/hypercore/netboot")


def netroot_partition() -> str:
    """The hypercore-netroot partition on the disk this system runs from."""
    root = run(["findmnt", "-n", "-o", "SOURCE", "/"]).stdout.strip()
    disk = run(["lsblk", "-n", "-d", "-o", "PKNAME", root]).stdout.strip() if root.startswith("/dev/") else ""
    if not disk:
        raise UserError(f"cannot tell which disk the root filesystem ({root or '?'}) is on",
                        hint="netboot serves the netroot partition of the installed disk; "
                             "run this on an installed Hypercore node")
    parts = json.loads(run(["lsblk", "-J", "-o", "PATH,PARTLABEL", f"/dev/{disk}"]).stdout)
    found = [d["path"] for d in _walk(parts.get("blockdevices", [])) if d.get("partlabel") == NETROOT_LABEL]
    if not found:
        raise UserError(f"/dev/{disk} has no partition labelled {NETROOT_LABEL}",
                        hint="this disk was installed from an older image; reinstall from a "
                             "current Hypercore image to serve network boot")
    return found[0]


def _walk(devs: list[dict]):
    for d in devs:
        yield d
        yield from _walk(d.get("children") or [])


def squashfs_extent(dev: Path | str) -> tuple[int, int]:
    """(bytes to copy, mkfs time) from a squashfs superblock."""
    with open(dev, "rb") as f:
        found = squashfs.superblock(f.read(squashfs.SUPERBLOCK_BYTES))
    if found is None:
        raise UserError(f"{dev} does not hold a squashfs filesystem",
                        hint="the netroot partition is damaged: reinstall, or copy root.squashfs by hand")
    return found


def _copy(src: Path | str, dst: Path, length: int | None = None) -> str:
    """Copy src (its first length bytes) to dst; the copy's SHA-256."""
    tmp = dst.with_name(f".{dst.name}.partial")
    h = hashlib.sha256()
    with open(src, "rb") as i, open(tmp, "wb") as o:
        left = length
        while left is None or left > 0:
            chunk = i.read(8 << 20 if left is None else min(left, 8 << 20))
            if not chunk:
                break
            o.write(chunk)
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    if length is not None and tmp.stat().st_size != length:
        tmp.unlink()
        raise UserError(f"{src} ended before {length} bytes were copied", hint="check the disk")
    tmp.chmod(0o644)
    tmp.replace(dst)
    return h.hexdigest()


def stage(http_root: Path, tftp_root: Path, partition: str | None = None,
          image_files: Path = IMAGE_FILES) -> list[str]:
    """Copy the client files into place; return what was done, a line each."""
    done = []
    for d in (http_root, tftp_root):
        d.mkdir(parents=True, exist_ok=True)
    for name in ("vmlinuz", "initrd.img"):
        src = image_files / name
        if not src.exists():
            raise UserError(f"{src} is missing", hint="this image was built without netboot files; "
                                                      "rebuild it with tools/build-image")
        for root in (http_root, tftp_root):
            _copy(src.resolve(), root / name)
    done.append(f"kernel and initramfs in {http_root} and {tftp_root}")
    part = partition or netroot_partition()
    length, stamp = squashfs_extent(part)
    marker = http_root / ".root.squashfs.source"
    want = f"{stamp}:{length}"
    target = http_root / "root.squashfs"
    if target.exists() and marker.exists() and marker.read_text().strip() == want:
        digest.of(target)               # recorded by an older version? record it now
        done.append(f"root.squashfs is current ({length // 2**20} MiB from {part})")
    else:
        digest.write_record(target, _copy(part, target, length))
        marker.write_text(want + "\n")
        done.append(f"copied root.squashfs ({length // 2**20} MiB) from {part}")
    return done

