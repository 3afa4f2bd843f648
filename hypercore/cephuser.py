"""Which cephx client the VM services act as.

`admin` on an appliance. A diskless node (network-booted from an appliance)
gets a key that may only use RBD images in vm-pool, and names it in
/etc/hypercore/ceph-user; HYPERCORE_CEPH_USER overrides both."""

from __future__ import annotations

import os
from pathlib import Path

USER_FILE = Path("/etc/hypercore/ceph-user")


def default_user() -> str:
    env = os.environ.get("HYPERCORE_CEPH_USER", "").strip()
    if env:
        return env
    try:
        text = USER_FILE.read_text().strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "admin"
