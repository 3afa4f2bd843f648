"""The FAT geometry and cluster chains that let the installer zero a file in
place (pure logic; the real ESPs are in test_apply_loop)."""

from __future__ import annotations

import subprocess

import pytest

from hypercore.errors import UserError
from hypercore_installer import fat


def test_clusters_of_a_real_fat32_file_hold_its_bytes(tmp_path):
    img, data = tmp_path / "esp.img", b"SEED" * 2000
    subprocess.run(["truncate", "-s", "64M", img], check=True)
    subprocess.run(["mkfs.vfat", "-F", "32", img], check=True, capture_output=True)
    (tmp_path / "seed").write_bytes(data)
    env = {"MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(["mcopy", "-i", img, tmp_path / "seed", "::/seed"], check=True, env=env)
    shown = subprocess.run(["mshowfat", "-i", img, "::/seed"], check=True, env=env, capture_output=True, text=True)
    raw = img.read_bytes()
    got = b"".join(raw[o:o + n] for o, n in fat.byte_ranges(raw[:512], fat.chain(shown.stdout)))
    assert got[:len(data)] == data


@pytest.mark.parametrize("bits,size", [("32", "64M"), ("16", "32M")])
def test_used_length_ends_after_the_last_file_and_the_rest_need_not_be_copied(tmp_path, bits, size):
    # What the installer copies of an ESP: up to the end of its last allocated
    # cluster. A copy of that much onto old bytes checks clean and has the files.
    img, env = tmp_path / "esp.img", {"MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(["truncate", "-s", size, img], check=True)
    subprocess.run(["mkfs.vfat", "-F", bits, img], check=True, capture_output=True)
    subprocess.run(["mmd", "-i", img, "::/EFI"], check=True, env=env)
    for name, n in (("a", 300_000), ("b", 5_000), ("c", 2_000_000)):
        (tmp_path / name).write_bytes(name.encode() * n)
        subprocess.run(["mcopy", "-i", img, tmp_path / name, f"::/EFI/{name}"], check=True, env=env)
    raw = img.read_bytes()
    used = fat.used_length(lambda offset, n: raw[offset:offset + n])
    shown = subprocess.run(["mshowfat", "-i", img, "::/EFI/c"], check=True, env=env, capture_output=True,
                           text=True).stdout
    end = max(o + n for o, n in fat.byte_ranges(raw[:512], fat.chain(shown)))
    assert used == end < len(raw) // 4
    copy = tmp_path / "copy.img"
    copy.write_bytes(raw[:used] + b"\xa5" * (len(raw) - used))
    assert subprocess.run(["fsck.vfat", "-n", copy], capture_output=True).returncode == 0
    got = subprocess.run(["mtype", "-i", copy, "::/EFI/c"], check=True, env=env, capture_output=True).stdout
    assert got == b"c" * 2_000_000


def test_used_length_is_unknown_for_fat12_and_what_is_not_fat(tmp_path):
    img = tmp_path / "small.img"
    subprocess.run(["truncate", "-s", "1M", img], check=True)
    subprocess.run(["mkfs.vfat", "-F", "12", img], check=True, capture_output=True)
    raw = img.read_bytes()
    assert fat.used_length(lambda offset, n: raw[offset:offset + n]) is None
    assert fat.used_length(lambda offset, n: bytes(n)) is None


def test_chain_reads_ranges_and_single_clusters():
    assert fat.chain("::/loader/random-seed <4-6> <9>\n") == [4, 5, 6, 9]
    assert fat.chain("") == []


def test_not_a_fat_boot_sector_is_refused():
    with pytest.raises(UserError, match="not a FAT filesystem"):
        fat.geometry(bytes(512))


def test_only_the_mounted_freezable_filesystems_of_the_source_are_frozen():
    """The live stick: its ext4 root is mounted at / (frozen during the copy),
    its ESP is vfat (cannot be frozen), a loop image is not mounted at all."""
    from hypercore_installer.runner import mounted_filesystems
    stick = ('{"blockdevices": [{"mountpoints": [null], "children": ['
             '{"mountpoints": ["/efi"]}, {"mountpoints": ["/"]}, {"mountpoints": [null]}]}]}')
    mounts = "/dev/sda3 / ext4 rw 0 0\n/dev/sda1 /efi vfat rw 0 0\ntmpfs /run tmpfs rw 0 0\n"
    assert mounted_filesystems(stick, mounts) == ["/"]
    assert mounted_filesystems('{"blockdevices": [{"mountpoints": [null]}]}', mounts) == []
