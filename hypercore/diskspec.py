"""The DISK argument of create-vm, as the original Hypercore wrote it and more.

    rbd:POOL/[NAMESPACE/]IMAGE[:conf=PATH][:id=USER]   an existing Ceph RBD image
    /path/to/disk.qcow2 | disk.raw         an existing qcow2 or raw file in the state
                                           directory (hypercore.hostdisks)
    dev:/dev/DISK                          a whole block device nothing uses
    new:SIZE                               a new disk (RBD in vm-pool when Ceph is
                                           there, else a qcow2 in the state dir)
    image:NAME                             a linked clone of a golden image
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hypercore import names
from hypercore.cephuser import default_user
from hypercore.definition import RbdDisk
from hypercore.errors import UserError
from hypercore.sizes import parse_size


@dataclass(frozen=True)
class NewDisk:
    size: int


@dataclass(frozen=True)
class ExistingFile:
    path: Path


@dataclass(frozen=True)
class ExistingDevice:
    path: str


@dataclass(frozen=True)
class FromImage:
    image: str


def parse_rbd(text: str) -> RbdDisk:
    body = text[len("rbd:"):]
    spec, *options = body.split(":")
    parts = spec.split("/")
    if len(parts) not in (2, 3):
        raise UserError(f"invalid RBD disk {text!r}: expected rbd:POOL/IMAGE or rbd:POOL/NAMESPACE/IMAGE",
                        hint="e.g. rbd:vm-pool/ubuntu-vm:conf=/etc/ceph/ceph.conf")
    pool, image = parts[0], parts[-1]
    namespace = parts[1] if len(parts) == 3 else None
    names.pool_name(pool)
    if namespace is not None:
        names.pool_name(namespace)
    names.rbd_image_name(image)
    conf, user = None, default_user()
    for opt in options:
        key, _, value = opt.partition("=")
        if key == "conf" and value.startswith("/") and "," not in value:
            conf = value
        elif key == "id" and value and value.replace("-", "").replace("_", "").replace(".", "").isalnum():
            user = value
        else:
            raise UserError(f"invalid RBD option {opt!r} in {text!r}",
                            hint="only :conf=/ABSOLUTE/PATH and :id=USER are supported")
    return RbdDisk(pool=pool, image=image, conf=conf, user=user, namespace=namespace)


def parse(text: str):
    """Return RbdDisk, ExistingFile, ExistingDevice, NewDisk or FromImage (nothing is touched)."""
    if not text:
        raise UserError("empty DISK argument", hint="give rbd:POOL/IMAGE, a disk file or new:SIZE")
    if text.startswith("rbd:"):
        return parse_rbd(text)
    if text.startswith("new:"):
        return NewDisk(parse_size(text[4:]))
    if text.startswith("image:"):
        return FromImage(names.image_name(text[6:]))
    if text.startswith("dev:"):
        if not text[4:].startswith("/dev/"):
            raise UserError(f"invalid block device {text!r}: expected dev:/dev/DISK", hint="e.g. dev:/dev/sdb")
        return ExistingDevice(text[4:])
    return ExistingFile(Path(os.path.abspath(text)))
