"""Real disks for integration tests: sparse files on loop devices, and a
small fake Hypercore image (GPT: ESP vfat, BIOS boot, root ext4) to install
from. Every loop device is detached and every mount released in teardown."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from hypercore.run import run

MiB = 1024 * 1024
GiB = 1024 * MiB

ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_TYPE = "21686148-6449-6E6F-744E-656564454649"
LIVE_MACHINE_ID = "0123456789abcdef0123456789abcdef"
# In what the live system writes for itself: never in the image kept for network installs, not even in free blocks.
LIVE_SECRET = "HYPERCORE-LIVE-SECRET"


def sparse_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def part(dev: str, n: int) -> str:
    return f"{dev}{'p' if dev[-1].isdigit() else ''}{n}"


@contextlib.contextmanager
def loop_device(path: Path):
    """Attach path to a loop device with its partitions visible; always detach."""
    dev = run(["losetup", "--find", "--show", "--partscan", str(path)]).stdout.strip()
    try:
        run(["partx", "-u", dev], check=False)
        yield dev
    finally:
        release_mounts_of(dev)
        run(["partx", "-d", dev], check=False)
        run(["losetup", "-d", dev], check=False)


def release_mounts_of(dev: str) -> None:
    """Unmount anything mounted from dev or its partitions (a failed test)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f
                  if " - " in line and line.split(" - ")[1].split()[1].startswith(dev)]
    for point in sorted(points, key=lambda p: -p.count("/")):
        run(["umount", "-l", point], check=False)


def release_mounts_under(top: Path) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(str(top))]
    for point in sorted(points, key=lambda p: -p.count("/")):
        run(["umount", "-l", point], check=False)


def sha256_of(path: Path) -> str:
    """Hash of a file's content (holes read as zeros), fast on sparse files:
    only the non-zero MiB chunks are hashed, each with its offset, so the same
    bytes hash the same whether stored as holes or as written zeros."""
    h = hashlib.sha256()
    seen: set[int] = set()
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        h.update(str(size).encode())
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:          # no data after pos
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            for chunk in range(start // MiB, (end - 1) // MiB + 1):
                if chunk in seen:
                    continue
                seen.add(chunk)
                f.seek(chunk * MiB)
                data = f.read(MiB)
                if data.rstrip(b"\0"):
                    h.update(chunk.to_bytes(8, "little") + data.ljust(MiB, b"\0"))
            pos = end
    return h.hexdigest()


def _write_tree(top: Path, files: dict[str, str | bytes], modes: dict[str, int] | None = None) -> None:
    for rel, content in files.items():
        p = top / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    for rel, mode in (modes or {}).items():
        os.chmod(top / rel, mode)


def make_source_image(work: Path, size: int = 256 * MiB) -> Path:
    """A small Hypercore-like image file: ESP (vfat, systemd-boot/grub
    configs naming the root by PARTUUID), BIOS boot, root (ext4, live bits)."""
    img = sparse_file(work / "source.img", size)
    run(["sfdisk", "-q", str(img)], input=(
        "label: gpt\n"
        f"size=64MiB, type={ESP_TYPE}, name=esp\n"
        f"size=1MiB, type={BIOS_TYPE}, name=linux\n"
        f"size=150MiB, type={ROOT_TYPE}, name=hypercore-root\n"))
    root_tree = work / "root-tree"
    _write_tree(root_tree, {
        "hypercore-image-marker": "hypercore test image\n",
        "etc/hostname": "hypercore\n",
        "etc/machine-id": LIVE_MACHINE_ID + "\n",
        "etc/hypercore/live": "# live medium\n",
        "etc/systemd/system/serial-getty@ttyS0.service.d/live-autologin.conf": "[Service]\nExecStart=\n",
        "etc/systemd/network/80-hypercore-dhcp.network": "[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n",
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
        "etc/group": "root:x:0:\nshadow:x:42:\n",
        "etc/shadow": "root:*:20000:0:99999:7:::\n",
        "etc/ssh/ssh_host_ed25519_key": f"live host key {LIVE_SECRET}-KEY\n",
        "etc/ssh/sshd_config": "# sshd\n",
        "etc/timezone": "Etc/UTC\n",
        "var/lib/dpkg/status": "Package: hypercore-test\n",
        "var/lib/systemd/random-seed": "seed",
        # What the live system writes for itself on its read-write root.
        f"var/log/journal/{LIVE_MACHINE_ID}/system.journal": f"LPKSHHRH live journal {LIVE_SECRET}-JOURNAL\n",
        "var/lib/systemd/credential.secret": f"live credential secret {LIVE_SECRET}-CREDENTIAL\n",
        "usr/share/zoneinfo/Europe/Lisbon": Path("/usr/share/zoneinfo/Europe/Lisbon").read_bytes(),
        "usr/share/zoneinfo/UTC": Path("/usr/share/zoneinfo/UTC").read_bytes(),
    }, {"etc/shadow": 0o640, "etc/ssh/ssh_host_ed25519_key": 0o600})
    (root_tree / "root").mkdir(mode=0o700)
    with loop_device(img) as dev:
        parts = run(["sfdisk", "-J", dev]).stdout
        import json
        root_uuid = json.loads(parts)["partitiontable"]["partitions"][2]["uuid"].lower()
        run(["mkfs.vfat", "-F", "32", "-n", "ESP", part(dev, 1)])
        run(["mkfs.ext4", "-q", "-F", "-L", "hypercore-root", "-d", str(root_tree), part(dev, 3)])
        esp_tree = work / "esp-tree"
        _write_tree(esp_tree, {
            "EFI/Linux/hypercore.efi": b"MZ fake UKI\x00" + f"root=PARTUUID={root_uuid}".encode() + b"\x00" * 64,
            "EFI/BOOT/BOOTX64.EFI": b"MZ fake systemd-boot",
            "loader/loader.conf": "timeout 3\n",
            "loader/random-seed": f"{LIVE_SECRET}-ESP-SEED".encode().ljust(32, b"\x01"),
            "loader/entries/hypercore.conf": "title hypercore\noptions console=ttyS0 rw\n",
            "grub/grub.cfg": f"menuentry hypercore {{\n  linux /vmlinuz root=PARTUUID={root_uuid} rw\n}}\n",
        })
        for top in sorted(esp_tree.iterdir()):
            run(["mcopy", "-s", "-i", part(dev, 1), str(top), "::/"])
    shutil.rmtree(root_tree)
    shutil.rmtree(esp_tree)
    return img


def make_ext4_disk(work: Path, name: str, size: int) -> Path:
    """A disk holding an ext4 filesystem (an old data disk)."""
    img = sparse_file(work / name, size)
    run(["mkfs.ext4", "-q", "-F", "-L", "olddata", str(img), "64M"])
    return img
