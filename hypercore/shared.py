"""The common storage space: one host folder every VM that asks for it can mount.

Exported two ways with the mount tag hypercore_share:
  virtiofs: a virtiofsd per VM serving STATE/shared over a vhost-user socket
            (needs the guest RAM as a shared memfd; see qemu_argv);
  9p:       QEMU's own virtio-9p server, so the original Hypercore's
            mount -t 9p -o trans=virtio,version=9p2000.L hypercore_share /shared
            works unchanged.
The guest helper guest/hypercore-share-mount mounts virtiofs, else 9p.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from hypercore.errors import UserError
from hypercore.run import CommandError, run
from hypercore.state import StateDir

# bookworm: the C virtiofsd from qemu-system-common; newer Debian: the Rust one.
VIRTIOFSD_PATHS = ("/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd")


def find_virtiofsd() -> str:
    for p in VIRTIOFSD_PATHS:
        if os.access(p, os.X_OK):
            return p
    raise UserError("virtiofsd is not installed (needed for a virtiofs shared folder)",
                    hint="apt-get install qemu-system-common, or set shared.transport: 9p")


def virtiofsd_argv(binary: str, socket: Path, shared_dir: Path) -> list[str]:
    if binary.endswith("/libexec/virtiofsd"):  # the Rust virtiofsd
        return [binary, f"--socket-path={socket}", f"--shared-dir={shared_dir}", "--cache=auto"]
    return [binary, f"--socket-path={socket}", "-o", f"source={shared_dir}", "-o", "cache=auto"]


def _fs_type(path: Path) -> str:
    try:
        return run(["stat", "-f", "-c", "%T", str(path)]).stdout.strip()
    except CommandError:
        return "unknown"


def ensure(state: StateDir) -> Path:
    """Create STATE/shared: a BTRFS subvolume where the state dir is on BTRFS."""
    shared = state.shared
    if not shared.exists():
        state.root.mkdir(parents=True, exist_ok=True)
        if _fs_type(state.root) == "btrfs":
            run(["btrfs", "subvolume", "create", str(shared)])
        else:
            shared.mkdir()
        # A common space: every VM may change every file in it.
        shared.chmod(0o777)
    return shared


def mount_script() -> str:
    try:
        return resources.files("hypercore").joinpath("guest/hypercore-share-mount").read_text()
    except FileNotFoundError:
        raise UserError("the guest helper hypercore-share-mount is not installed with hypercore",
                        hint="in a guest, mount it by hand: mount -t virtiofs hypercore_share /shared "
                             "|| mount -t 9p -o trans=virtio,version=9p2000.L hypercore_share /shared") from None
