"""One VM disk, one writer, across the cluster.

Who has an RBD image open is what Ceph says: its watchers (`rbd status`), one
per open (QEMU, qemu-io, rbd-nbd, a kernel mapping). Which VM and node that is
comes from hypercore's claim: an exclusive RADOS lock on the image's header
object, cookie VM@NODE, taken by `vm start` once its QEMU has opened the disk
(still paused, so the guest has written nothing) and released when the VM
stops (the runner's exit path, and `vm stop`).

The rules:
  - a start is refused while the image has any watcher, naming the VM and node
    when a claim accounts for it (same IP), else the watcher's address;
  - a claim with no watcher left is stale (its node was killed hard, or its
    runner died): the next start says so and breaks it. A claim whose image
    still has a watcher is never broken;
  - two starts racing past the first check both open the disk paused; the
    lock lets exactly one of them on, the other quits its QEMU;
  - `vm delete` (of a disk hypercore made) and `snapshot rollback` are
    refused while the image has any watcher.
"""

from __future__ import annotations

import socket
import time

from hypercore import storage_rbd as sr
from hypercore.definition import RbdDisk
from hypercore.errors import UserError


def node_name() -> str:
    return socket.gethostname().split(".")[0] or "localhost"


def cookie(vm: str, node: str | None = None) -> str:
    return f"{vm}@{node or node_name()}"


def describe(claim: sr.Claim) -> str:
    return f"VM {claim.vm} on {claim.node}" + (f" (since {claim.since})" if claim.since else "")


def who(watchers: list[sr.Watcher], claims: list[sr.Claim]) -> str:
    """The watchers, each named by the claim from its IP when there is one; a claim
    no watcher matched (a node that reached the cluster from another of its
    addresses) is still named."""
    named, used = [], set()
    for w in watchers:
        owner = next((c for c in claims if c.ip == w.ip), None)
        text = describe(owner) if owner else f"{w.client} at {w.address}"
        used.add(owner)
        if text not in named:
            named.append(text)
    named += [f"claimed by {describe(c)}" for c in claims if c not in used]
    return ", ".join(named)


def require_unused(disk: RbdDisk, doing: str, vm: str) -> None:
    """For delete and rollback (doing: 'delete', 'roll back'): nobody may have the image open."""
    open_by = sr.watchers(disk)
    if open_by:
        raise UserError(f"cannot {doing} VM {vm}: its disk {disk.spec} is in use by "
                        f"{who(open_by, sr.claims(disk))}",
                        hint="stop the VM there first (hypercore vm stop NAME on that node), then try again")


def before_start(disk: RbdDisk, vm: str) -> list[str]:
    """Refuse a start while anyone has the disk open; break a stale claim (say so)."""
    obj = sr.header_object(sr.require_image(disk))
    open_by = sr.watchers(disk)
    held = sr.claims(disk, obj)
    if open_by:
        raise UserError(f"cannot start VM {vm}: its disk {disk.spec} is in use by {who(open_by, held)}",
                        hint="one VM disk has one writer: stop the VM there first "
                             "(hypercore vm stop on that node), or give this VM another disk")
    notes = []
    for claim in held:
        sr.break_claim(disk, claim, obj)
        notes.append(f"{disk.spec}: broke the stale claim of {describe(claim)}: "
                     "no client has the image open any more")
    return notes


def claim(disk: RbdDisk, vm: str) -> None:
    """Take the claim (atomic); a UserError naming the holder when another start won."""
    node = node_name()
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    if sr.take_claim(disk, cookie(vm, node), f"VM {vm} on {node} since {since}"):
        return
    held = sr.claims(disk)
    holder = ", ".join(describe(c) for c in held) or "another client"
    raise UserError(f"cannot start VM {vm}: its disk {disk.spec} is in use by {holder}",
                    hint="another start took it first; stop the VM there before starting it here")


def release(disk: RbdDisk, vm: str) -> bool:
    """Drop this node's claim for this VM, if it is there; True when one was dropped."""
    mine = cookie(vm)
    info = sr.image_info(disk.spec, disk.user, disk.conf)
    if info is None:  # deleted meanwhile: its claim went with it
        return False
    obj = sr.header_object(info)
    dropped = False
    for c in sr.claims(disk, obj):
        if c.cookie == mine:
            sr.break_claim(disk, c, obj)
            dropped = True
    return dropped


def rbd_disks(defn) -> list[RbdDisk]:
    return [d for d in defn.disks if isinstance(d, RbdDisk)]


def release_all(defn) -> list[str]:
    """Every claim of this VM from this node, however it stopped; what went wrong is
    returned, not raised (a stale claim is broken by the next start anyway)."""
    problems = []
    for disk in rbd_disks(defn):
        try:
            release(disk, defn.name)
        except UserError as e:
            problems.append(f"{disk.spec}: {e.message}")
    return problems
