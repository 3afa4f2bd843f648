"""Disk sizes: parse "500G" / "1.5TB" / "8GiB" and print bytes for humans.

K, M, G, T, KiB, MiB, GiB, TiB are binary (powers of 1024); KB, MB, GB, TB
are decimal (powers of 1000, as disk vendors print them).
"""

from __future__ import annotations

import re

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?\s*([KMGT](i?B)?|B)?$"

_UNITS = {
    "": 1, "B": 1,
    "K": KiB, "KIB": KiB, "KB": 1000,
    "M": MiB, "MIB": MiB, "MB": 1000**2,
    "G": GiB, "GIB": GiB, "GB": 1000**3,
    "T": TiB, "TIB": TiB, "TB": 1000**4,
}


def parse_size(text: str | int) -> int:
    """Bytes from "500G", "1.5TB", "8GiB" or a plain integer. ValueError if malformed."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 500G, 1.5T, 960GB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def human(n: int | None) -> str:
    """1.5 GiB style (binary units, one decimal)."""
    if n is None:
        return "?"
    for unit, size in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
