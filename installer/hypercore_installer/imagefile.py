"""Copying a Hypercore image from a disk, only what its filesystems use, onto
a disk or into a sparse file; and packing it for network installs:
zstd-compressed, hashed as it is written."""

from __future__ import annotations

import hashlib
import os
import re
import stat

from hypercore import squashfs

from . import fat
from .layout import SECTOR

CHUNK = 4 << 20
_ZERO = bytes(CHUNK)


# What each filesystem of an image needs copied: its used part, found by reading it.
EXT4 = ("ext4", "ext3", "ext2")       # only the blocks in use, from dumpe2fs's list of free ones
MERGE_GAP = 1 << 20                   # free runs shorter than this are copied: fewer, longer reads


def image_ranges(source: str, nbytes: int, partitions: list[dict]) -> tuple[list[tuple[int, int]],
                                                                         list[tuple[int, int]]]:
    """What an image of nbytes on source holds: the (offset, length) ranges to
    copy as they are (the partition table, the gaps, of a FAT or squashfs
    partition what its filesystem uses, any other partition whole), and the
    (offset, length) of the ext4 filesystems, whose used blocks ext4_ranges()
    finds. Without partitions: all of it."""
    parts = sorted((p for p in partitions if p["start"] * SECTOR < nbytes), key=lambda p: p["start"])
    ranges, ext4, at = [], [], 0
    with open(source, "rb", buffering=0) as src:
        def read(offset: int, n: int) -> bytes:
            src.seek(offset)
            return src.read(n)

        for p in parts:
            start = p["start"] * SECTOR
            size = min(p["sectors"] * SECTOR, nbytes - start)
            ranges.append((at, start - at))
            at = start + size
            fstype = p.get("fstype")
            if fstype in EXT4:
                ext4.append((start, size))
                continue
            used = None
            if fstype == "vfat":
                used = fat.used_length(lambda o, n, base=start: read(base + o, n))
            elif fstype == "squashfs":
                found = squashfs.superblock(read(start, squashfs.SUPERBLOCK_BYTES))
                used = found and found[0]
            ranges.append((start, size if used is None else min(used, size)))
    ranges.append((at, nbytes - at))
    return [(o, n) for o, n in ranges if n > 0], ext4


def ext4_ranges(dumpe2fs: str, offset: int, merge_gap: int = MERGE_GAP) -> list[tuple[int, int]]:
    """The (offset, length) byte ranges in use of the ext4 filesystem at
    offset, from `dumpe2fs` output (its block count and size, and each group's
    "Free blocks:"; libext2fs knows the groups whose bitmaps are not
    initialised). Free runs shorter than merge_gap are included."""
    def field(name: str) -> int:
        m = re.search(rf"^{name}:\s+(\d+)$", dumpe2fs, re.M)
        if not m:
            raise ValueError(f"dumpe2fs printed no {name!r}")
        return int(m.group(1))

    count, size = field("Block count"), field("Block size")
    free = []
    for listing in re.findall(r"^\s+Free blocks: ?(.*)$", dumpe2fs, re.M):
        for item in filter(None, (x.strip() for x in listing.split(","))):
            first, _, last = item.partition("-")
            free.append((int(first), int(last or first) + 1))
    used, at = [], 0
    for first, end in sorted(free) + [(count, count)]:
        if first > at:
            if used and (at - (used[-1][0] + used[-1][1])) * size < merge_gap:
                used[-1] = (used[-1][0], first - used[-1][0])
            else:
                used.append((at, first - at))
        at = max(at, end)
    return [(offset + b * size, n * size) for b, n in used]


def copy_ranges(source: str, dest: str, nbytes: int, ranges: list[tuple[int, int]]) -> int:
    """Each (offset, length) range of source (opened read-only) to the same
    offset of dest: a disk, written as it is, or a new file nbytes long, where
    runs of zeros stay holes. Returns the bytes read; a short source is an OSError."""
    device = os.path.exists(dest) and stat.S_ISBLK(os.stat(dest).st_mode)
    copied = 0
    with open(source, "rb", buffering=0) as src, open(dest, "r+b" if device else "wb") as out:
        for offset, length in ranges:
            done = 0
            src.seek(offset)
            while done < length:
                chunk = src.read(min(CHUNK, length - done))
                if not chunk:
                    raise OSError(f"{source} ended at byte {offset + done} of {nbytes}")
                if device or chunk != _ZERO[: len(chunk)]:
                    out.seek(offset + done)
                    out.write(chunk)
                done += len(chunk)
            copied += length
        if not device:
            out.truncate(nbytes)
        out.flush()
        os.fsync(out.fileno())
    return copied


def compress(path: str, out_path: str, level: int = 1) -> str:
    """path as one zstd frame in out_path (fsynced); returns the SHA-256 of the
    compressed bytes, computed as they are written: the digest clients check
    while they download, and nothing is read twice. Runs of zeros (most of a
    sparse image) cost next to nothing."""
    import zstandard
    h = hashlib.sha256()
    size = os.path.getsize(path)
    cobj = zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True).compressobj(size=size)
    with open(path, "rb", buffering=0) as src, open(out_path, "wb") as out:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            data = cobj.compress(chunk)
            h.update(data)
            out.write(data)
        data = cobj.flush()
        h.update(data)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()
