"""Which bytes of an ext4 filesystem an install copies: the blocks dumpe2fs
does not list as free, on real filesystems made by mkfs.ext4."""

from __future__ import annotations

import os
import subprocess

import pytest

from hypercore_installer.imagefile import copy_ranges, ext4_ranges

MiB = 1 << 20


def dumpe2fs(path: str) -> str:
    return subprocess.run(["dumpe2fs", path], capture_output=True, text=True, check=True).stdout


def test_free_runs_are_left_out_and_short_ones_copied_with_their_neighbours():
    out = ("Block count:              100\nBlock size:               4096\n"
           "Group 0: (Blocks 0-49)\n  Free blocks: 10-19, 22, 30-49\n"
           "Group 1: (Blocks 50-99)\n  Free blocks: \n")
    # A gap of one block (22) is copied; 10-19 and 30-49 are not (40 KiB, 80 KiB gaps).
    assert ext4_ranges(out, 0, merge_gap=8192) == [(0, 10 * 4096), (20 * 4096, 10 * 4096), (50 * 4096, 50 * 4096)]
    assert ext4_ranges(out, 1000, merge_gap=0)[:3] == [(1000, 40960), (1000 + 20 * 4096, 2 * 4096),
                                                       (1000 + 23 * 4096, 7 * 4096)]
    assert ext4_ranges(out, 0, merge_gap=1 << 30) == [(0, 100 * 4096)]


def test_what_dumpe2fs_does_not_say_is_an_error():
    with pytest.raises(ValueError, match="Block count"):
        ext4_ranges("Block size: 4096\n", 0)


@pytest.mark.parametrize("blocksize", [1024, 4096])
def test_copying_the_used_ranges_onto_garbage_gives_the_same_filesystem(tmp_path, blocksize):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("node1\n")
    (tree / "big").write_bytes(os.urandom(3 * MiB))
    offset = 3 * MiB                                  # the filesystem inside a disk, as a partition
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(offset + 64 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", str(blocksize), "-d", str(tree),
                    "-E", f"offset={offset}", str(disk), "64M"], check=True)
    ranges = ext4_ranges(dumpe2fs(f"{disk}?offset={offset}"), offset)
    assert sum(n for _, n in ranges) < 32 * MiB       # most of the 64 MiB is free, and not copied
    target = tmp_path / "target.img"
    target.write_bytes(b"\xa5" * (offset + 64 * MiB))
    copy_ranges(str(disk), str(target), offset + 64 * MiB, ranges)
    fs = tmp_path / "fs.img"                          # the target's filesystem alone, for the checks
    with open(target, "rb") as src, open(fs, "wb") as out:
        src.seek(offset)
        out.write(src.read())
    check = subprocess.run(["e2fsck", "-fn", str(fs)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    got = subprocess.run(["debugfs", "-R", "cat /big", str(fs)], capture_output=True, check=True).stdout
    assert got == (tree / "big").read_bytes()


def test_an_ext4_that_dumpe2fs_cannot_read_is_copied_whole(tmp_path):
    import io
    import re

    from hypercore_installer.runner import Runner
    offset, size = 1 * MiB, 32 * MiB
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(offset + size + MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-O", "metadata_csum", "-E", f"offset={offset}",
                    str(disk), "32M"], check=True)
    listing = dumpe2fs(f"{disk}?offset={offset}")
    bitmap = int(re.search(r"Inode bitmap at (\d+)", listing).group(1))
    with open(disk, "r+b") as f:                      # one more inode "in use": its checksum no longer matches
        f.seek(offset + bitmap * 4096 + 100)
        f.write(b"\xff")
    with open(disk, "r+b") as f:                      # bytes in the free space that a used-blocks copy skips
        f.seek(offset + size - MiB)
        f.write(b"kept")
    target = tmp_path / "target.img"
    said = io.StringIO()
    Runner(out=said).copy_image(str(disk), str(target), offset + size,
                                [{"start": offset // 512, "sectors": size // 512, "fstype": "ext4"}])
    assert f"the ext4 filesystem at byte {offset} whole (dumpe2fs: " in said.getvalue(), said.getvalue()
    assert "checksum" in said.getvalue()
    assert target.read_bytes() == disk.read_bytes()[: offset + size]
