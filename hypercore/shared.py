"""The common storage space: one host folder every VM that asks for it can mount.

Exported two ways with the mount tag hypercore_share:
  virtiofs: a virtiofsd per VM serving STATE/shared over a vhost-user socket
            (needs the guest RAM as a shared memfd; see qemu_argv);
  9p:       QEMU's own virtio-9p server, so the original Hypercore's
            mount -t 9p -o trans=virtio,version=9p2000.L hypercore_share /shared
            works unchanged.
The guest helper guest/hypercore-share-mount mounts virtiofs, else 9p.

Neither server runs as root. The folder belongs to hypercore-vm (0770);
QEMU serves 9p as that user with security_model=mapped-xattr, and virtiofsd
runs as that user in a user namespace where it is root, so its sandbox
(mount, pid and net namespaces, pivot_root into the folder) works while
the guest's root is hypercore-vm on the host: a device node or a setuid-root
file made in a guest is never one on the host (the appliance also mounts the
folder nosuid,nodev,noexec).
"""

from __future__ import annotations

import os
import stat
from importlib import resources
from pathlib import Path

from hypercore.errors import UserError
from hypercore.run import CommandError, run
from hypercore.state import StateDir
from hypercore.vmuser import VMUser

MODE = 0o770

# bookworm: the C virtiofsd from qemu-system-common; newer Debian: the Rust one.
VIRTIOFSD_PATHS = ("/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd")


USERNS_SYSCTLS = (("/proc/sys/kernel/unprivileged_userns_clone", "kernel.unprivileged_userns_clone=1"),
                  ("/proc/sys/user/max_user_namespaces", "user.max_user_namespaces=1000"))


def check_userns() -> None:
    """virtiofsd (as hypercore-vm) needs a user namespace of its own."""
    for path, fix in USERNS_SYSCTLS:
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value == "0":
            raise UserError(f"virtiofsd cannot run unprivileged: {path} is 0 (no user namespaces)",
                            hint=f"sysctl -w {fix}, or share over 9p only: hypercore vm share NAME on --transport 9p")


def find_virtiofsd() -> str:
    for p in VIRTIOFSD_PATHS:
        if os.access(p, os.X_OK):
            return p
    raise UserError("virtiofsd is not installed (needed for a virtiofs shared folder)",
                    hint="apt-get install qemu-system-common, or set shared.transport: 9p")


def virtiofsd_argv(binary: str, fd: int, shared_dir: Path, *, userns: bool) -> list[str]:
    """virtiofsd serving shared_dir on the listening socket fd (made by the runner, as root).

    userns: start it in a user namespace of its own whose root is the calling
    (unprivileged) user: the C virtiofsd needs to be root for its sandbox."""
    if binary.endswith("/libexec/virtiofsd"):  # the Rust virtiofsd
        argv = [binary, f"--fd={fd}", f"--shared-dir={shared_dir}", "--cache=auto"]
    else:
        argv = [binary, f"--fd={fd}", "-o", f"source={shared_dir}", "-o", "cache=auto"]
    return ["unshare", "--user", "--map-root-user", "--"] + argv if userns else argv


def _fs_type(path: Path) -> str:
    try:
        return run(["stat", "-f", "-c", "%T", str(path)]).stdout.strip()
    except CommandError:
        return "unknown"


def ensure(state: StateDir, owner: VMUser | None) -> Path:
    """STATE/shared (a BTRFS subvolume where the state dir is on BTRFS), owned
    by the VMs' user with mode 0770: made when missing, put right when not.

    Only the folder itself: what is inside was written by the VMs (a walk
    over it could be led elsewhere by their symlinks)."""
    shared = state.shared
    if not shared.exists() and not shared.is_symlink():
        state.root.mkdir(parents=True, exist_ok=True)
        if _fs_type(state.root) == "btrfs":
            run(["btrfs", "subvolume", "create", str(shared)])
        else:
            shared.mkdir()
    st = shared.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"the shared folder {shared} is not a directory",
                        hint=f"move it away; the next start makes {shared} again")
    if owner is not None and (st.st_uid, st.st_gid) != (owner.uid, owner.gid):
        os.chown(shared, owner.uid, owner.gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != MODE:
        shared.chmod(MODE)
    if owner is not None:
        _reachable(state.root, owner)
    return shared


def _reachable(root: Path, owner: VMUser) -> None:
    """The VMs' user must pass through the state dir (search only: 0711 is enough)
    and every directory above it to reach the folder."""
    mode = root.stat().st_mode
    if not mode & 0o001:
        root.chmod(stat.S_IMODE(mode) | 0o011)
    for d in root.resolve().parents:
        st = d.stat()
        if not (st.st_mode & 0o001 or (st.st_uid == owner.uid and st.st_mode & 0o100)
                or (st.st_gid == owner.gid and st.st_mode & 0o010)):
            raise UserError(f"{owner.name}, the user VMs run as, cannot reach the shared folder: "
                            f"{d} is not searchable for it",
                            hint=f"chmod o+x {d}, or use a state directory elsewhere (--state-dir)")


def mount_script() -> str:
    try:
        return resources.files("hypercore").joinpath("guest/hypercore-share-mount").read_text()
    except FileNotFoundError:
        raise UserError("the guest helper hypercore-share-mount is not installed with hypercore",
                        hint="in a guest, mount it by hand: mount -t virtiofs hypercore_share /shared "
                             "|| mount -t 9p -o trans=virtio,version=9p2000.L hypercore_share /shared") from None
