"""The functions that do each plan step, by action name.

Every function takes (ctx, params), changes the machine only through
ctx.runner, and can be run again after a crash: it either repeats harmless
work or checks what is already there.
"""

from __future__ import annotations

from collections.abc import Callable

from .context import Context
from . import data, disk, system

ACTIONS: dict[str, Callable[[Context, dict], None]] = {
    "wipe-disk": disk.wipe_disk,
    "copy-image": disk.copy_image,
    "new-partition-ids": disk.new_partition_ids,
    "new-filesystem-ids": disk.new_filesystem_ids,
    "fix-boot-references": system.fix_boot_references,
    "grow-root": disk.grow_root,
    "add-data-partition": disk.add_data_partition,
    "configure-identity": system.configure_identity,
    "configure-network": system.configure_network,
    "configure-root-login": system.configure_root_login,
    "remove-live-bits": system.remove_live_bits,
    "save-answers": system.save_answers,
    "make-data-filesystem": data.make_data_filesystem,
    "make-subvolumes": data.make_subvolumes,
    "move-var-lib": data.move_var_lib,
    "keep-image": data.keep_image,
    "finish": disk.finish,
}

# The programs each action runs, checked before anything is written.
TOOLS: dict[str, tuple[str, ...]] = {
    "wipe-disk": ("wipefs", "dd", "partx"),
    "copy-image": ("sync", "blockdev", "dumpe2fs", "lsblk", "fsfreeze"),
    "new-partition-ids": ("sfdisk", "partx"),
    "new-filesystem-ids": ("e2fsck", "tune2fs", "fatlabel"),
    "fix-boot-references": ("mdir", "mtype", "mcopy", "mshowfat", "mdel", "mount", "umount"),
    "grow-root": ("sfdisk", "partx", "e2fsck", "resize2fs"),
    "add-data-partition": ("sfdisk", "partx"),
    "configure-identity": ("mount", "umount", "find"),
    "configure-network": ("mount", "umount"),
    "configure-root-login": ("mount", "umount", "chpasswd"),
    "remove-live-bits": ("mount", "umount", "rmdir"),
    "save-answers": ("mount", "umount"),
    "make-data-filesystem": ("mkfs.btrfs", "btrfs"),
    "make-subvolumes": ("mount", "umount", "btrfs"),
    "move-var-lib": ("mount", "umount", "cp"),
    "keep-image": ("mount", "umount", "losetup", "lsblk", "fsfreeze", "blockdev", "dumpe2fs", "e2fsck", "find", "mshowfat", "mdel", "mv"),
    "finish": ("sync",),
}


def check_tools(actions) -> None:
    """UserError naming the package of the first missing program."""
    from hypercore.run import require
    for action in actions:
        for program in TOOLS[action]:
            require(program)


__all__ = ["ACTIONS", "TOOLS", "Context", "check_tools"]
