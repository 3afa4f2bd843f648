"""qcow2 and raw disk files, driven with qemu-img.

Every function builds one argument list (the *_argv helpers are pure and
unit-tested) and runs it through hypercore.run.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypercore.errors import UserError
from hypercore.run import CommandError, run

IMPORTABLE = ("qcow2", "raw", "vmdk", "vdi", "vhdx", "vpc")


def info_argv(path: Path | str, chain: bool = False) -> list[str]:
    # -U: read the header even while a running QEMU holds the image lock.
    return ["qemu-img", "info", "--output=json", "-U"] + (["--backing-chain"] if chain else []) + [str(path)]


def create_argv(path: Path | str, size: int, fmt: str = "qcow2") -> list[str]:
    return ["qemu-img", "create", "-q", "-f", fmt, str(path), str(size)]


def overlay_argv(path: Path | str, backing: Path | str, backing_fmt: str) -> list[str]:
    """A qcow2 whose unwritten clusters come from backing: constant time, any size."""
    return ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(backing), "-F", backing_fmt, str(path)]


def convert_argv(src: Path | str, src_fmt: str, dst: Path | str, dst_fmt: str) -> list[str]:
    return ["qemu-img", "convert", "-f", src_fmt, "-O", dst_fmt, str(src), str(dst)]


def snapshot_argv(action: str, path: Path | str, name: str | None = None) -> list[str]:
    flag = {"create": "-c", "apply": "-a", "delete": "-d", "list": "-l"}[action]
    return ["qemu-img", "snapshot", flag] + ([name] if name else []) + [str(path)]


def info(path: Path | str) -> dict:
    try:
        return json.loads(run(info_argv(path)).stdout)
    except CommandError as e:
        raise UserError(f"cannot read disk image {path}: {(e.stderr.strip().splitlines() or ['?'])[-1]}",
                        hint="check the path and that it is a disk image") from None


def chain(path: Path | str) -> list[dict]:
    """The image and its backing files, top first."""
    return json.loads(run(info_argv(path, chain=True)).stdout)


def detect_format(path: Path | str, allowed=("qcow2", "raw")) -> str:
    p = Path(path)
    if not p.exists():
        raise UserError(f"disk image {p} does not exist",
                        hint="give an existing qcow2 or raw file, rbd:POOL/IMAGE or new:SIZE")
    if p.is_dir():
        raise UserError(f"{p} is a directory, not a disk image")
    fmt = info(p).get("format")
    if fmt not in allowed:
        raise UserError(f"{p} is a {fmt} image; only {', '.join(allowed)} can be used here",
                        hint=f"import it first: hypercore image import {p} NAME")
    return fmt


def virtual_size(path: Path | str) -> int:
    return int(info(path)["virtual-size"])


def snapshots(path: Path | str) -> list[dict]:
    """Internal snapshots of a qcow2: [{'name':..., 'vm-state-size':..., 'date-sec':...}]."""
    return info(path).get("snapshots", [])


def create(path: Path, size: int, fmt: str = "qcow2") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    run(create_argv(path, size, fmt))


def create_overlay(path: Path, backing: Path, backing_fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    run(overlay_argv(path, backing, backing_fmt))


def convert(src: Path, src_fmt: str, dst: Path, dst_fmt: str) -> None:
    run(convert_argv(src, src_fmt, dst, dst_fmt))


def snapshot(action: str, path: Path, name: str) -> None:
    run(snapshot_argv(action, path, name))
