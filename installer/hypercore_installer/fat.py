"""Where a file's bytes lie in a FAT filesystem (the ESP), so that it can be
zeroed in place before it is deleted: mtools deletes a file's directory entry
but leaves its clusters as they were, and the host has no vfat driver to
overwrite it through. Geometry from the boot sector, the cluster chain from
`mshowfat`."""

from __future__ import annotations

import re
import struct

from hypercore.errors import UserError


def geometry(boot_sector: bytes) -> tuple[int, int]:
    """(byte offset of cluster 2, bytes per cluster) of a FAT12/16/32 boot sector."""
    if len(boot_sector) < 512 or boot_sector[510:512] != b"\x55\xaa":
        raise UserError("not a FAT filesystem: no boot sector signature",
                        hint="check the partition (is it the ESP?)")
    bps, spc, reserved, fats, root_entries = struct.unpack_from("<HBHBH", boot_sector, 11)
    fat16_size, = struct.unpack_from("<H", boot_sector, 22)
    fat32_size, = struct.unpack_from("<I", boot_sector, 36)
    fat_size = fat16_size or fat32_size
    if not bps or not spc or not fat_size:
        raise UserError("not a FAT filesystem: its boot sector has no geometry", hint="check the partition")
    root_dir_sectors = (root_entries * 32 + bps - 1) // bps
    return (reserved + fats * fat_size + root_dir_sectors) * bps, spc * bps


def chain(mshowfat_output: str) -> list[int]:
    """The clusters `mshowfat` lists for one file ('::/f <4-13> <20>')."""
    out: list[int] = []
    for first, last in re.findall(r"<(\d+)(?:-(\d+))?>", mshowfat_output):
        out += range(int(first), int(last or first) + 1)
    return out


def byte_ranges(boot_sector: bytes, clusters: list[int]) -> list[tuple[int, int]]:
    """(offset, length) within the filesystem of each cluster."""
    data, size = geometry(boot_sector)
    return [(data + (c - 2) * size, size) for c in clusters]


def used_length(read) -> int | None:
    """Bytes from the start of a FAT16 or FAT32 filesystem to the end of its
    last allocated cluster (read(offset, n) reads the filesystem): nothing of it
    lies beyond. None for FAT12 and for what is not FAT at all."""
    boot = read(0, 512)
    try:
        data, cluster = geometry(boot)
    except UserError:
        return None
    bps, _, reserved = struct.unpack_from("<HBH", boot, 11)
    total16, = struct.unpack_from("<H", boot, 19)
    total32, = struct.unpack_from("<I", boot, 32)
    clusters = ((total16 or total32) * bps - data) // cluster
    if clusters < 4085:
        return None
    width, mask = (2, 0xFFFF) if clusters < 65525 else (4, 0x0FFFFFFF)
    table = read(reserved * bps, (clusters + 2) * width)
    entries = struct.unpack(f"<{len(table) // width}{'H' if width == 2 else 'I'}", table[:len(table) // width * width])
    last = next((n for n in range(len(entries) - 1, 1, -1) if entries[n] & mask), 1)
    return data + (last - 1) * cluster
