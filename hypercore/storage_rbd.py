"""Ceph RBD images, driven with the rbd CLI (and qemu-img for imports).

The *_argv helpers are pure and unit-tested; no Ceph cluster is needed for
that. cephx stays on: every call names the client (--id) and, when given, the
ceph.conf (-c).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
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


def status_argv(spec: str, user=None, conf=None) -> list[str]:
    """Who has the image open: its watchers (a read-only open, which adds none)."""
    return base(user, conf) + ["status", "--format", "json", spec]


# hypercore's claim on an image is a RADOS advisory lock on its header object,
# named apart from librbd's own "rbd_lock": an `rbd lock add` lock would keep
# QEMU's librbd from taking the exclusive lock it needs to write (its writes
# would wait for ever), this one does not.
CLAIM_LOCK = "hypercore"


def header_object(info: dict) -> str:
    """The header object of a format 2 image, from `rbd info --format json`."""
    return f"rbd_header.{info['id']}"


def rados_base(pool: str, user=None, conf=None) -> list[str]:
    return ["rados", "--id", user or default_user()] + (["-c", conf] if conf else []) + CONNECT + ["-p", pool]


def claim_info_argv(pool: str, obj: str, user=None, conf=None) -> list[str]:
    return rados_base(pool, user, conf) + ["lock", "info", obj, CLAIM_LOCK, "--format", "json"]


def claim_take_argv(pool: str, obj: str, cookie: str, description: str, user=None, conf=None) -> list[str]:
    return rados_base(pool, user, conf) + ["lock", "get", obj, CLAIM_LOCK, "--lock-type", "exclusive",
                                           "--lock-cookie", cookie, "--lock-description", description]


def claim_break_argv(pool: str, obj: str, locker: str, cookie: str, user=None, conf=None) -> list[str]:
    return rados_base(pool, user, conf) + ["lock", "break", obj, CLAIM_LOCK, locker, "--lock-cookie", cookie]


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


@dataclass(frozen=True)
class Client:
    """A client of the cluster by its address, e.g. 10.0.2.15:0/3412345678 (IP:port/nonce)."""
    address: str

    @property
    def ip(self) -> str:
        addr = self.address.split(":", 1)[1] if self.address[:3] in ("v1:", "v2:") else self.address
        addr = addr.removeprefix("any:").rsplit("/", 1)[0]
        return addr.rsplit(":", 1)[0].strip("[]") if ":" in addr else addr


@dataclass(frozen=True)
class Watcher(Client):
    client: str = ""   # client.4123


@dataclass(frozen=True)
class Claim(Client):
    """hypercore's lock: cookie VM@NODE, description 'VM NAME on NODE since ...'."""
    locker: str = ""   # client.4567: the `rados lock get` that took it
    cookie: str = ""
    description: str = ""

    @property
    def vm(self) -> str:
        return self.cookie.rpartition("@")[0]

    @property
    def node(self) -> str:
        return self.cookie.rpartition("@")[2]

    @property
    def since(self) -> str:
        return self.description.partition(" since ")[2]


def parse_status(text: str) -> list[Watcher]:
    doc = json.loads(text or "{}")
    return [Watcher(address=w.get("address", "?"), client=f"client.{w.get('client', '?')}")
            for w in doc.get("watchers", [])]


def parse_claims(text: str) -> list[Claim]:
    doc = json.loads(text or "{}")
    return [Claim(address=c.get("addr", "?"), locker=c.get("name", "?"), cookie=c.get("cookie", ""),
                  description=c.get("description", "")) for c in doc.get("lockers", [])]


def watchers(disk: RbdDisk) -> list[Watcher]:
    try:
        return parse_status(run(status_argv(disk.spec, disk.user, disk.conf), timeout=60).stdout)
    except CommandError as e:
        raise UserError(f"cannot tell who has {disk.spec} open: {_fail(e)}",
                        hint="check the cluster: ceph -s") from None


def _header(disk: RbdDisk) -> str:
    return header_object(require_image(disk))


def _in_pool(disk: RbdDisk, argv: list[str]) -> list[str]:
    """A rados command line for the disk's RBD namespace (its header object lives there)."""
    return argv + ["--namespace", disk.namespace] if disk.namespace else argv


def claims(disk: RbdDisk, obj: str | None = None) -> list[Claim]:
    argv = _in_pool(disk, claim_info_argv(disk.pool, obj or _header(disk), disk.user, disk.conf))
    try:
        return parse_claims(run(argv, timeout=60).stdout)
    except CommandError as e:
        raise UserError(f"cannot read hypercore's claim on {disk.spec}: {_fail(e)}",
                        hint=f"the command was: {' '.join(argv)}") from None


def take_claim(disk: RbdDisk, cookie: str, description: str) -> bool:
    """Atomic: True when this call took it, False when someone holds it."""
    argv = _in_pool(disk, claim_take_argv(disk.pool, _header(disk), cookie, description, disk.user, disk.conf))
    try:
        run(argv, timeout=60)
    except CommandError as e:
        if "busy" in e.stderr.lower() or "exists" in e.stderr.lower():
            return False
        raise UserError(f"cannot claim {disk.spec}: {_fail(e)}",
                        hint=f"the command was: {' '.join(argv)}") from None
    return True


def break_claim(disk: RbdDisk, claim: Claim, obj: str | None = None) -> None:
    """Remove one claim; one already gone is no error."""
    argv = _in_pool(disk, claim_break_argv(disk.pool, obj or _header(disk), claim.locker, claim.cookie,
                                           disk.user, disk.conf))
    try:
        run(argv, timeout=60)
    except CommandError as e:
        if "No such file" not in e.stderr:
            raise UserError(f"cannot release the claim on {disk.spec}: {_fail(e)}",
                            hint=f"the command was: {' '.join(argv)}") from None


def rbd(argv: list[str], timeout: float | None = 600) -> None:
    """Run an rbd (or qemu-img to rbd:) command; a failure is one line for the user."""
    try:
        run(argv, timeout=timeout)
    except CommandError as e:
        raise UserError(f"rbd failed: {_fail(e)}", hint=f"the command was: {' '.join(argv)}") from None


def pool_of_new_disks() -> str:
    return os.environ.get("HYPERCORE_RBD_POOL", DEFAULT_POOL)
