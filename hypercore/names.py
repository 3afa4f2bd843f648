"""Names the user gives: VMs, snapshots, images, Ceph pools and RBD images.

Every name ends up in a path, a systemd unit name or a QEMU option string, so
each is checked against one strict pattern before anything else happens: no
path separators, no shell or QEMU option metacharacters (',' '=' ':' '@').
"""

from __future__ import annotations

import re

from hypercore.errors import UserError

VM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Snapshots and images: a little looser (dots and underscores are common in
# image names like debian-12.5 or snapshot names like before_upgrade).
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# Ceph pool and RBD image names as this project accepts them.
POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
RBD_IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check(kind: str, value: str, pattern: re.Pattern, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise UserError(f"invalid {kind} {value!r}", hint=rule)
    return value


def vm_name(value: str) -> str:
    return _check("VM name", value, VM_NAME,
                  "use 1-63 characters: lower-case letters, digits and '-', "
                  "starting with a letter or digit (e.g. web-1)")


def snapshot_name(value: str) -> str:
    return _check("snapshot name", value, SNAPSHOT_NAME,
                  "use 1-63 characters: letters, digits, '.', '_' and '-', "
                  "starting with a letter or digit (e.g. before-upgrade)")


def image_name(value: str) -> str:
    return _check("image name", value, IMAGE_NAME,
                  "use 1-63 characters: lower-case letters, digits, '.', '_' and '-' "
                  "(e.g. debian-12)")


def pool_name(value: str) -> str:
    return _check("Ceph pool name", value, POOL_NAME,
                  "use letters, digits, '.', '_' and '-' (e.g. vm-pool)")


def rbd_image_name(value: str) -> str:
    return _check("RBD image name", value, RBD_IMAGE_NAME,
                  "use letters, digits, '.', '_' and '-' (e.g. ubuntu-vm)")


def split_at_snapshot(value: str) -> tuple[str, str | None]:
    """'src@snap' -> ('src', 'snap'); 'src' -> ('src', None)."""
    if "@" in value:
        base, snap = value.split("@", 1)
        return base, snapshot_name(snap)
    return value, None
