"""A diskless node's own cephx identity, made when an operator approves its
join request (`hypercore cluster approve CODE`, approval.py).

Each diskless node NAME gets client.diskless-NAME, which may use RBD images
only in its own namespace of vm-pool (`profile rbd pool=vm-pool
namespace=NAME`): it cannot read, write or delete the golden images in the
default namespace nor another node's disks. The material (ceph.conf's
client lines, the keyring, the namespace) goes to the node sealed to its key;
nothing of it is a file the client network can fetch."""

from __future__ import annotations

import re

from hypercore.errors import UserError
from hypercore.run import CommandError, run as run_cmd

POOL = "vm-pool"
PREFIX = "diskless-"
EEXIST = 17


def entity(name: str) -> str:
    return f"client.{PREFIX}{name}"


def caps(name: str) -> list[str]:
    return ["mon", "profile rbd", "osd", f"profile rbd pool={POOL} namespace={name}"]


def client_conf(text: str) -> str:
    """The [global] lines a client needs from this node's ceph.conf: cluster id, monitors, network, cephx."""
    keep = [line.strip() for line in text.splitlines()
            if re.match(r"^\s*(fsid|mon[_ ]host|public[_ ]network|auth[_ ]client[_ ]required)\s*=", line)]
    return ("# For a Hypercore diskless node, from the appliance that approved it.\n"
            "[global]\n" + "\n".join(keep) + "\n")


def material(name: str, conf_text: str, *, run=run_cmd) -> dict:
    """Make (or keep: the same node booting again) the namespace and the
    identity; what the node needs, for sealing."""
    proc = run(["rbd", "namespace", "create", f"{POOL}/{name}"], check=False)
    if proc.returncode not in (0, EEXIST) and "exists" not in (proc.stderr or ""):
        raise CommandError(["rbd", "namespace", "create", f"{POOL}/{name}"], proc.returncode,
                           proc.stdout or "", proc.stderr or "")
    argv = ["ceph", "auth", "get-or-create", entity(name), *caps(name)]
    proc = run(argv, check=False)
    if proc.returncode != 0:          # stdout would be the key: only stderr is shown
        raise CommandError(argv, proc.returncode, "", proc.stderr or "")
    if f"[{entity(name)}]" not in (proc.stdout or ""):
        raise UserError(f"ceph auth get-or-create {entity(name)} printed no keyring",
                        hint=f"check it: ceph auth get {entity(name)}")
    # An identity of this name made earlier with other caps would keep them: set them.
    run(["ceph", "auth", "caps", entity(name), *caps(name)])
    return {"kind": "diskless", "user": f"{PREFIX}{name}", "pool": POOL, "namespace": name,
            "conf": client_conf(conf_text), "keyring": proc.stdout}
