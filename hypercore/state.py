"""The state directory: where definitions, disks, sockets and images live.

    STATE/vms/NAME/vm.yaml         the VM definition (vm.schema.json)
    STATE/vms/NAME/disk0.qcow2     disks hypercore created for the VM
    STATE/vms/NAME/run/            sockets, pid files and logs of a running VM
    STATE/images/NAME.{qcow2,raw}  golden images (read-only bases) off Ceph
    STATE/bases/                   frozen layers shared by linked clones
    STATE/shared/                  the common storage space every VM can mount
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hypercore.errors import UserError

DEFAULT = "/var/lib/hypercore"
ENV = "HYPERCORE_STATE_DIR"
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


def resolve(option: str | None) -> "StateDir":
    """--state-dir, else $HYPERCORE_STATE_DIR, else /var/lib/hypercore."""
    return StateDir(Path(option or os.environ.get(ENV) or DEFAULT).absolute())


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def vms(self) -> Path:
        return self.root / "vms"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def bases(self) -> Path:
        return self.root / "bases"

    @property
    def shared(self) -> Path:
        return self.root / "shared"

    def vm_dir(self, name: str) -> Path:
        return self.vms / name

    def definition(self, name: str) -> Path:
        return self.vm_dir(name) / "vm.yaml"

    def run_dir(self, name: str) -> Path:
        return self.vm_dir(name) / "run"

    def runtime(self, name: str) -> "Runtime":
        return Runtime(self.run_dir(name))

    def vm_names(self) -> list[str]:
        if not self.vms.is_dir():
            return []
        return sorted(p.name for p in self.vms.iterdir() if (p / "vm.yaml").is_file())

    def ensure(self) -> None:
        for d in (self.root, self.vms, self.images, self.bases):
            d.mkdir(parents=True, exist_ok=True)
        self.lock_down()

    def lock_down(self) -> None:
        """vms/ and bases/ hold the VMs' disks, sockets and logs: the caller's alone
        (0700). QEMU opens what it needs before it drops to hypercore-vm, so a
        QEMU taken over by its guest cannot read another VM's disk."""
        for d in (self.vms, self.bases):
            try:
                if d.stat().st_mode & 0o077:
                    d.chmod(0o700)
            except FileNotFoundError:
                pass


@dataclass(frozen=True)
class Runtime:
    """Files of one running VM; all of them go away when it stops."""
    dir: Path

    qmp = property(lambda self: self.dir / "qmp.sock")
    qga = property(lambda self: self.dir / "qga.sock")
    console = property(lambda self: self.dir / "console.sock")
    console_log = property(lambda self: self.dir / "console.log")
    virtiofsd = property(lambda self: self.dir / "virtiofsd.sock")
    qemu_pid = property(lambda self: self.dir / "qemu.pid")
    runner_pid = property(lambda self: self.dir / "runner.pid")
    log = property(lambda self: self.dir / "runner.log")
    accel = property(lambda self: self.dir / "accel")

    def check_socket_paths(self) -> None:
        longest = max((self.qmp, self.qga, self.console, self.virtiofsd), key=lambda p: len(str(p)))
        if len(os.fsencode(longest)) > MAX_SOCKET_PATH:
            raise UserError(f"the state directory path is too long for UNIX sockets ({longest})",
                            hint="use a shorter --state-dir (the socket paths must stay under 108 bytes)")
