"""Steps on whole disks and partition tables."""

from __future__ import annotations

from ..layout import DATA_PARTLABEL, LINUX_DATA_TYPE
from ..netsource import is_url
from ..sizes import MiB, human
from .context import Context


def _zero(ctx: Context, disk: str, offset: int, length: int) -> None:
    ctx.runner.run(["dd", "if=/dev/zero", f"of={disk}", f"bs={MiB}", f"count={length}",
                    f"seek={offset}", "oflag=seek_bytes", "iflag=count_bytes", "conv=notrunc,fsync",
                    "status=none"])


def wipe_disk(ctx: Context, p: dict) -> None:
    """Erase signatures: wipefs on the disk, then zero the first and last MiB
    of every old partition and of the disk (through the disk device, so it
    works whether or not the kernel still lists the partitions)."""
    disk, size = p["disk"], p["size"]
    ctx.runner.run(["wipefs", "--all", disk])
    for part in p.get("regions", []):
        start, length = part["offset"], part["size"]
        _zero(ctx, disk, start, min(MiB, length))
        if length > MiB:
            _zero(ctx, disk, start + length - MiB, MiB)
    _zero(ctx, disk, 0, min(MiB, size))
    if size > MiB:
        _zero(ctx, disk, size - MiB, MiB)
    # Drop the kernel's view of the old partitions (exit 1: there were none).
    ctx.runner.run(["partx", "-d", disk], ok=(0, 1))


def copy_image(ctx: Context, p: dict) -> None:
    if is_url(p["source"]):
        ctx.runner.say(f"    downloading {human(p['bytes'])} from {p['source']} (checked against "
                       f"SHA-256 {p['sha256']} before its partition table is written)")
        ctx.runner.download(p["source"], p["target"], p["bytes"], p["sha256"])
        return
    ctx.runner.say(f"    copying the {human(p['bytes'])} image (what its filesystems use); "
                   "this takes a few minutes on a USB stick")
    ctx.runner.run(["sync"])
    with ctx.runner.frozen(p["source"]):     # the live root does not change under the copy
        ctx.runner.copy_image(p["source"], p["target"], p["bytes"], p.get("partitions", ()))


def new_partition_ids(ctx: Context, p: dict) -> None:
    t, ids = p["target"], ctx.ids
    ctx.runner.run(["sfdisk", "--relocate", "gpt-bak-std", t])
    # The copied GPT still lists partitions that were not copied (an answers
    # partition after the image on the stick): remove them from the table.
    for n in p.get("delete", []):
        ctx.runner.run(["sfdisk", "--no-reread", "--delete", t, str(n)])
    ctx.runner.run(["sfdisk", "--disk-id", t, ids["disk"]])
    for n in p["numbers"]:
        ctx.runner.run(["sfdisk", "--part-uuid", t, str(n), ids[f"part:{n}"]])
    # The installed disk is not a live medium: drop the label that says so.
    for n in p.get("relabel", []):
        ctx.runner.run(["sfdisk", "--part-label", t, str(n), "esp"])
    ctx.reread_partitions(t)


def new_filesystem_ids(ctx: Context, p: dict) -> None:
    # e2fsck exit 1 means "errors corrected" (e.g. the journal of a copied,
    # mounted root was replayed): that is success here.
    ctx.runner.run(["e2fsck", "-f", "-y", p["root"]], ok=(0, 1))
    ctx.runner.run(["tune2fs", "-U", ctx.ids["fs:root"], p["root"]])
    ctx.runner.run(["fatlabel", "-i", p["esp"], ctx.ids["fs:esp"]])


def grow_root(ctx: Context, p: dict) -> None:
    t = p["target"]
    ctx.runner.run(["sfdisk", "--no-reread", "-N", str(p["number"]), t], input=f"size={p['sectors']}\n")
    ctx.reread_partitions(t)
    ctx.runner.run(["e2fsck", "-f", "-y", p["root"]], ok=(0, 1))
    ctx.runner.run(["resize2fs", p["root"]])


def add_data_partition(ctx: Context, p: dict) -> None:
    t, n = p["target"], p["number"]
    spec = (f"start={p['start']}, size={p['sectors']}, type={LINUX_DATA_TYPE}, "
            f"uuid={ctx.ids[f'part:{n}']}, name={DATA_PARTLABEL}\n")
    ctx.runner.run(["sfdisk", "--no-reread", "-N", str(n), t], input=spec)
    ctx.reread_partitions(t)


def finish(ctx: Context, p: dict) -> None:
    ctx.runner.run(["sync"])
