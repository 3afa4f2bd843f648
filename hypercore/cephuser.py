"""Which cephx client the VM services act as, and in which RBD namespace
they make new disks.

`admin` on an appliance, in vm-pool's default namespace. A diskless node
(network-booted from an appliance, approved with `hypercore cluster
approve`) gets its own key that may only use RBD images in its own namespace
of vm-pool, and names them in /etc/hypercore/ceph-user and
/etc/hypercore/rbd-namespace; HYPERCORE_CEPH_USER and
HYPERCORE_RBD_NAMESPACE override them."""

from __future__ import annotations

import os
from pathlib import Path

USER_FILE = Path("/etc/hypercore/ceph-user")
NAMESPACE_FILE = Path("/etc/hypercore/rbd-namespace")


def _first_line(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text.splitlines()[0].strip() if text else ""


def default_user() -> str:
    env = os.environ.get("HYPERCORE_CEPH_USER", "").strip()
    return env or _first_line(USER_FILE) or "admin"


def default_namespace() -> str | None:
    """The RBD namespace new disks go to (None: the pool's default namespace)."""
    env = os.environ.get("HYPERCORE_RBD_NAMESPACE", "").strip()
    return env or _first_line(NAMESPACE_FILE) or None
