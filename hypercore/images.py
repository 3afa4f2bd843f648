"""Golden images: imported once, cloned by many VMs without copying.

On Ceph: an RBD image in vm-pool with a protected snapshot 'golden' that VMs
clone from (rbd clone). Off Ceph: a read-only qcow2 (or raw) file in
STATE/images that VM disks use as their backing file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from hypercore import names
from hypercore import storage_file as sf
from hypercore import storage_rbd as sr
from hypercore.definition import Disk, FileDisk, RbdDisk
from hypercore.errors import UserError
from hypercore.files import write_atomic
from hypercore.sizes import human
from hypercore.state import StateDir
from hypercore.storage import Backend


@dataclass(frozen=True)
class Image:
    name: str
    backend: str        # rbd | file
    location: str       # POOL/IMAGE or a path
    format: str         # raw on RBD; qcow2 or raw off Ceph
    size: int
    source: str
    created: str

    def disk(self) -> Disk:
        if self.backend == "rbd":
            pool, image = self.location.split("/", 1)
            return RbdDisk(pool=pool, image=image)
        return FileDisk(path=self.location, format=self.format)


def _meta(state: StateDir, name: str) -> Path:
    return state.images / f"{name}.yaml"


def get(state: StateDir, name: str) -> Image | None:
    p = _meta(state, name)
    if not p.is_file():
        return None
    return Image(**yaml.safe_load(p.read_text()))


def require(state: StateDir, name: str) -> Image:
    img = get(state, name)
    if img is None:
        raise UserError(f"no image named {name!r}", hint="list them: hypercore image list")
    return img


def all_images(state: StateDir) -> list[Image]:
    if not state.images.is_dir():
        return []
    return [img for p in sorted(state.images.glob("*.yaml")) if (img := get(state, p.stem))]


def import_image(state: StateDir, src: Path, name: str, backend: Backend) -> tuple[Image, str]:
    names.image_name(name)
    if get(state, name) is not None:
        raise UserError(f"an image named {name!r} already exists", hint="choose another name")
    src = src.absolute()
    fmt = sf.detect_format(src, allowed=sf.IMPORTABLE)
    size = sf.virtual_size(src)
    state.ensure()
    if backend.name == "rbd":
        pool = sr.pool_of_new_disks()
        spec = f"{pool}/{name}"
        if sr.image_info(spec) is not None:
            raise UserError(f"RBD image {spec} already exists", hint="choose another image name")
        sr.rbd(sr.import_argv(src, fmt, spec), timeout=None)  # as long as the copy takes
        sr.rbd(sr.snap_argv("create", spec, sr.GOLDEN_SNAP))
        sr.rbd(sr.snap_argv("protect", spec, sr.GOLDEN_SNAP))
        img = Image(name, "rbd", spec, "raw", size, str(src), time.strftime("%Y-%m-%d %H:%M:%S"))
        where = f"RBD image {spec} with protected snapshot @{sr.GOLDEN_SNAP}"
    else:
        out_fmt = "raw" if fmt == "raw" else "qcow2"
        dst = state.images / f"{name}.{out_fmt}"
        tmp = dst.with_suffix(".partial")
        try:
            sf.convert(src, fmt, tmp, out_fmt)
            tmp.chmod(0o444)
            tmp.rename(dst)
        finally:
            tmp.unlink(missing_ok=True)
        img = Image(name, "file", str(dst), out_fmt, size, str(src), time.strftime("%Y-%m-%d %H:%M:%S"))
        where = f"read-only {out_fmt} base {dst} ({backend.reason})"
    write_atomic(_meta(state, name), yaml.safe_dump(img.__dict__, sort_keys=False))
    return img, f"imported {src} ({fmt}, {human(size)}) as image {name}: {where}"


def linked_disk(img: Image, vm: str, index: int, state: StateDir) -> Disk:
    """A new disk for VM that reads from the image and writes to its own layer."""
    if img.backend == "rbd":
        src = img.disk()
        dst = f"{src.pool}/{vm}-disk{index}"
        if sr.image_info(dst) is not None:
            raise UserError(f"RBD image {dst} already exists", hint="delete it or choose another VM name")
        sr.rbd(sr.clone_argv(src.spec, sr.GOLDEN_SNAP, dst))
        return RbdDisk(pool=src.pool, image=f"{vm}-disk{index}", owned=True)
    path = state.vm_dir(vm) / f"disk{index}.qcow2"
    sf.create_overlay(path, Path(img.location), img.format)
    return FileDisk(path=str(path), format="qcow2", owned=True)


def delete(state: StateDir, name: str, users: list[str]) -> str:
    img = require(state, name)
    if users:
        raise UserError(f"image {name} is in use by VM(s) {', '.join(users)}",
                        hint="delete those VMs first (their disks read from this image)")
    if img.backend == "rbd":
        if sr.children(img.location, sr.GOLDEN_SNAP):
            raise UserError(f"image {name} still has RBD clones",
                            hint=f"see: rbd children {img.location}@{sr.GOLDEN_SNAP}")
        sr.rbd(sr.snap_argv("unprotect", img.location, sr.GOLDEN_SNAP))
        sr.rbd(sr.snap_argv("rm", img.location, sr.GOLDEN_SNAP))
        sr.rbd(sr.rm_argv(img.location))
    else:
        Path(img.location).unlink(missing_ok=True)
    _meta(state, name).unlink()
    return f"deleted image {name}"
