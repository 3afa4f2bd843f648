"""Ceph RBD images, driven with the rbd CLI (and qemu-img for imports).

The *_argv helpers are pure and unit-tested; no Ceph cluster is needed for
that. cephx stays on: every call names the client (--id) and, when given, the
ceph.conf (-c).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypercore.cephuser import default_user
from hypercore.definition import RbdDisk
from hypercore.errors import UserError
from hypercore.run import CommandError, run

DEFAULT_POOL = "vm-pool"
DEFAULT_CONF = "/etc/ceph/ceph.conf"
GOLDEN_SNAP = "golden"
# The rbd CLI would wait minutes for an absent monitor by default.
CONNECT = ["--client_mount_timeout=15"]


def base(user: str | None = None, conf: str | None = None) -> list[str]:
    return ["rbd", "--id", user or default_user()] + (["-c", conf] if conf else []) + CONNECT


def disk_base(disk: RbdDisk) -> list[str]:
    return base(disk.user, disk.conf)


def ls_argv(pool: str, user=None, conf=None) -> list[str]:
    return base(user, conf) + ["ls", "--format", "json", pool]


def info_argv(spec: str, user=None, conf=None) -> list[str]:
    return base(user, conf) + ["info", "--format", "json", spec]


def create_argv(spec: str, size: int, user=None, conf=None) -> list[str]:
    return base(user, conf) + ["create", "--size", f"{size // (1024 * 1024)}M", spec]


def snap_argv(action: str, spec: str, snap: str | None = None, user=None, conf=None) -> list[str]:
    """action: create | rm | rollback | protect | unprotect | ls | purge."""
    target = f"{spec}@{snap}" if snap else spec
    extra = ["--format", "json"] if action == "ls" else []
    extra += ["--no-progress"] if action in ("rollback", "rm", "purge") else []
    return base(user, conf) + ["snap", action] + extra + [target]


def clone_argv(src: str, snap: str, dst: str, user=None, conf=None) -> list[str]:
    return base(user, conf) + ["clone", f"{src}@{snap}", dst]


def children_argv(spec: str, snap: str, user=None, conf=None) -> list[str]:
    return base(user, conf) + ["children", "--format", "json", f"{spec}@{snap}"]


def rm_argv(spec: str, user=None, conf=None) -> list[str]:
    return base(user, conf) + ["rm", "--no-progress", spec]


def qemu_target(spec: str, user=None, conf=None) -> str:
    """The rbd: filename qemu-img understands (names are validated: no ':' inside)."""
    return f"rbd:{spec}:id={user or default_user()}" + (f":conf={conf}" if conf else "")


def import_argv(src: Path | str, src_fmt: str, spec: str, user=None, conf=None) -> list[str]:
    return ["qemu-img", "convert", "-f", src_fmt, "-O", "raw", str(src), qemu_target(spec, user, conf)]


# --- running them ---------------------------------------------------------

def _fail(e: CommandError) -> str:
    return (e.stderr.strip().splitlines() or [f"exit {e.returncode}"])[-1]


def available(pool: str = DEFAULT_POOL, conf: str | None = None) -> tuple[bool, str]:
    """Is Ceph there with the pool? (ok, reason) for the 'which storage' message."""
    from shutil import which
    if which("rbd") is None:
        return False, "the rbd tool is not installed"
    if not os.path.exists(conf or DEFAULT_CONF):
        return False, f"{conf or DEFAULT_CONF} does not exist"
    try:
        run(ls_argv(pool, conf=conf), timeout=40)
    except CommandError as e:
        return False, f"pool {pool} is not reachable ({_fail(e)})"
    return True, f"Ceph pool {pool} is reachable"


def image_info(spec: str, user=None, conf=None) -> dict | None:
    try:
        return json.loads(run(info_argv(spec, user, conf), timeout=60).stdout)
    except CommandError as e:
        if "No such file" in e.stderr or "error opening image" in e.stderr or e.returncode == 2:
            return None
        raise


def require_image(disk: RbdDisk) -> dict:
    found = image_info(disk.spec, disk.user, disk.conf)
    if found is None:
        raise UserError(f"RBD image {disk.spec} does not exist",
                        hint=f"create it: rbd create --size 10G {disk.spec} (or use new:SIZE)")
    return found


def snapshots(spec: str, user=None, conf=None) -> list[dict]:
    """[{'name':..., 'size':..., 'protected': 'true'|'false', 'timestamp':...}]"""
    return json.loads(run(snap_argv("ls", spec, user=user, conf=conf), timeout=60).stdout or "[]")


def children(spec: str, snap: str, user=None, conf=None) -> list[str]:
    out = json.loads(run(children_argv(spec, snap, user, conf), timeout=60).stdout or "[]")
    return [f"{c['pool']}/{c['image']}" if isinstance(c, dict) else str(c) for c in out]


def rbd(argv: list[str], timeout: float | None = 600) -> None:
    """Run an rbd (or qemu-img to rbd:) command; a failure is one line for the user."""
    try:
        run(argv, timeout=timeout)
    except CommandError as e:
        raise UserError(f"rbd failed: {_fail(e)}", hint=f"the command was: {' '.join(argv)}") from None


def pool_of_new_disks() -> str:
    return os.environ.get("HYPERCORE_RBD_POOL", DEFAULT_POOL)
