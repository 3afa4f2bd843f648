"""Sizes, partition types and the geometry of the installed disk (pure).

The installed disk is the image's partition table copied as is (ESP, BIOS
boot, root), the root partition grown, and - when no data disk is given - a
BTRFS data partition on the rest of the disk.
"""

from __future__ import annotations

from .sizes import GiB, MiB, parse_size

MIN_TARGET = 8 * GiB          # smallest target disk
MIN_DATA_ON_TARGET = 2 * GiB  # smallest data partition on the rest of the target
MIN_DATA_DISK = 1 * GiB       # smallest whole data disk
MIN_OSD = 5 * GiB             # ceph-volume refuses smaller devices
DEFAULT_ROOT_SIZE = "16G"

SECTOR = 512
ALIGN = MiB // SECTOR          # 1 MiB in sectors
GPT_TAIL = 33                  # backup partition entries + header, in sectors

ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
ROOT_TYPE = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"     # root, x86-64 (discoverable)
LINUX_DATA_TYPE = "0fc63daf-8483-4772-8e79-3d69d8477de4"  # not auto-mounted by gpt-auto
DATA_PARTLABEL = "hypercore-data"
DATA_FS_LABEL = "hypercore-data"
# A filesystem with this label holds an answer file (sources.py); on the boot
# stick it follows the image and is never copied to the target.
ANSWERS_LABEL = "HYPERCORE"


def align_down(sector: int) -> int:
    return sector // ALIGN * ALIGN


def align_up(sector: int) -> int:
    return -(-sector // ALIGN) * ALIGN


def image_end(partitions: list[dict]) -> int:
    """First sector after the image's last partition."""
    return max(p["start"] + p["sectors"] for p in partitions)


def geometry(source: dict, target_size: int, data_on_target: bool, root_size: str | None) -> dict:
    """Root partition size and the data partition (start, sectors) on the target.

    Raises ValueError with a sentence when the target is too small.
    """
    total = target_size // SECTOR
    last_usable = total - GPT_TAIL - 1           # inclusive
    end = last_usable + 1                        # exclusive
    root = source["root"]
    root_start, root_min = root["start"], root["sectors"]
    if not data_on_target:
        sectors = align_down(end) - root_start
        if sectors < root_min:
            raise ValueError("smaller than the image")
        return {"root_sectors": sectors, "data": None}
    want = parse_size(root_size or DEFAULT_ROOT_SIZE) // SECTOR
    room = align_down(end - MIN_DATA_ON_TARGET // SECTOR) - root_start
    sectors = max(root_min, min(align_up(want), room))
    data_start = align_up(root_start + sectors)
    data_sectors = align_down(end) - data_start
    if data_sectors * SECTOR < MIN_DATA_ON_TARGET:
        raise ValueError("too small for the image plus a 2 GiB data partition")
    return {"root_sectors": sectors,
            "data": {"number": source["last_number"] + 1, "start": data_start, "sectors": data_sectors}}


def min_target_size(source: dict, data_on_target: bool) -> int:
    need = image_end(source["partitions"]) * SECTOR + (GPT_TAIL + 1) * SECTOR
    if data_on_target:
        need = align_up(image_end(source["partitions"])) * SECTOR + MIN_DATA_ON_TARGET + (GPT_TAIL + 1) * SECTOR
    return max(MIN_TARGET, need)


# The BTRFS data filesystem (see installer/README.md, "BTRFS layout").
VAR_LIB_SUBVOLUME = "@var-lib"
HYPERCORE_SUBVOLUMES = ("images", "vms", "shared", "iso", "tftpboot", ".snapshots")
# nosuid,nodev: nothing in /var/lib is a setuid program or a device node.
MOUNT_OPTIONS = "subvol=@var-lib,nosuid,nodev,noatime,compress=zstd:1"
# The folder every VM writes (hypercore/shared.py) is a mount of its own, so its
# options stand even if /var/lib's change: no setuid, device node or program of a
# guest's is ever one on the host.
SHARED_MOUNT = "/var/lib/hypercore/shared"
SHARED_MOUNT_OPTIONS = f"subvol={VAR_LIB_SUBVOLUME}/hypercore/shared,nosuid,nodev,noexec,noatime,compress=zstd:1"
# Under @var-lib: the netboot HTTP root (/var/lib/hypercore/netboot).
NETBOOT_DIR = "hypercore/netboot"


def subvolumes() -> list[str]:
    """Subvolume paths relative to the BTRFS top level, parents first."""
    base = f"{VAR_LIB_SUBVOLUME}/hypercore"
    return [VAR_LIB_SUBVOLUME, base, *(f"{base}/{s}" for s in HYPERCORE_SUBVOLUMES)]
