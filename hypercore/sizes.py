"""Sizes as users write them: 512M, 10G, 10GiB, 1T, or plain bytes."""

from __future__ import annotations

import re

from hypercore.errors import UserError

MiB = 1024 ** 2
GiB = 1024 ** 3
_UNITS = {"": 1, "k": 1024, "m": MiB, "g": GiB, "t": 1024 ** 4}
_SIZE = re.compile(r"^(\d+)\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Return bytes; binary units (G = GiB). A new disk is a whole number of MiB."""
    m = _SIZE.fullmatch(str(text).strip())
    if not m:
        raise UserError(f"invalid size {text!r}", hint="write it like 512M, 20G or 1T")
    size = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if size < MiB or size % MiB:
        raise UserError(f"invalid size {text!r}: a disk must be a whole number of MiB, "
                        "at least 1 MiB", hint="write it like 512M, 20G or 1T")
    return size


def human(size: int) -> str:
    for unit, factor in (("TiB", 1024 ** 4), ("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"
