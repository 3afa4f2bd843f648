"""What a squashfs superblock says about the filesystem behind it."""

from __future__ import annotations

import struct

MAGIC = 0x73717368
SUPERBLOCK_BYTES = 96


def superblock(head: bytes) -> tuple[int, int] | None:
    """(bytes the filesystem occupies, rounded up to 4 KiB; its mkfs time) from
    the first 96 bytes of a squashfs, or None when they are not one."""
    if len(head) < SUPERBLOCK_BYTES or struct.unpack_from("<I", head, 0)[0] != MAGIC:
        return None
    mkfs_time, = struct.unpack_from("<I", head, 8)
    bytes_used, = struct.unpack_from("<Q", head, 40)
    return -(-bytes_used // 4096) * 4096, mkfs_time
