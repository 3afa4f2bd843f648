"""Copying a Hypercore image from a disk, only what its filesystems use, onto
a disk or into a sparse file; and packing it for network installs:
zstd-compressed, hashed as it is written."""

from __future__ import annotations

import hashlib
import os
import stat
import struct

from hypercore import squashfs

from . import fat
from .layout import SECTOR

CHUNK = 4 << 20
_ZERO = bytes(CHUNK)


# What each filesystem of an image needs copied: its used part, found by reading it.
EXT4 = ("ext4", "ext3", "ext2")       # copied by e2image: only the blocks in use


def image_ranges(source: str, nbytes: int, partitions: list[dict]) -> tuple[list[tuple[int, int]], list[int]]:
    """What an image of nbytes on source holds: the (offset, length) ranges to
    copy as they are (the partition table, the gaps, of a FAT or squashfs
    partition what its filesystem uses, any other partition whole), and the
    offsets of the ext4 filesystems, whose used blocks e2image copies. Without
    partitions: all of it."""
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
                ext4.append(start)
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


def ext4_used(source: str, offset: int) -> int:
    """Bytes in use in the ext4 filesystem at offset of source, from its superblock."""
    with open(source, "rb", buffering=0) as src:
        src.seek(offset + 1024)
        sb = src.read(1024)
    blocks, free = struct.unpack_from("<I", sb, 4)[0], struct.unpack_from("<I", sb, 12)[0]
    if struct.unpack_from("<I", sb, 0x60)[0] & 0x80:          # 64bit: the high halves count too
        blocks += struct.unpack_from("<I", sb, 0x150)[0] << 32
        free += struct.unpack_from("<I", sb, 0x158)[0] << 32
    return (blocks - free) << (10 + struct.unpack_from("<I", sb, 24)[0])


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
