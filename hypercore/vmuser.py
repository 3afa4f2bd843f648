"""The unprivileged user every VM's QEMU and virtiofsd run as: hypercore-vm.

The image makes it (overlays/hypercore/usr/lib/sysusers.d/hypercore.conf).
QEMU starts as root, opens what the command line names (disks, RBD images
with their keyring, sockets, the console log, /dev/kvm, the bridge helper's
tap) and then drops to this user with -runas: the files stay root's (0600
keyrings, the VMs' directories 0700) and a QEMU taken over by its guest can
reach none of them, nor another VM's disks. virtiofsd runs as this user from
the start, in a user namespace (hypercore.shared). The one thing the user
owns is the shared folder.

When the caller is not root, QEMU runs as the caller: it is unprivileged
already, and there is nothing to drop.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from hypercore.errors import UserError

NAME = "hypercore-vm"
SYSUSERS = "/usr/lib/sysusers.d/hypercore.conf"


@dataclass(frozen=True)
class VMUser:
    name: str
    uid: int
    gid: int


def lookup(name: str = NAME) -> VMUser | None:
    """The user to run VMs as, or None when we are not root (no privileges to drop)."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise UserError(f"the user {name} that VMs run as does not exist",
                        hint=f"create it: systemd-sysusers {SYSUSERS} (shipped in the image), or "
                             f"useradd --system --no-create-home --shell /usr/sbin/nologin {name}") from None
    if pw.pw_uid == 0 or pw.pw_gid == 0:
        raise UserError(f"the user {name} that VMs run as has uid or gid 0",
                        hint=f"make {name} an unprivileged system user (userdel {name}; systemd-sysusers {SYSUSERS})")
    return VMUser(name, pw.pw_uid, pw.pw_gid)
