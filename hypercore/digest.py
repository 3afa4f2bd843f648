"""SHA-256 of the files served to network-boot clients, and the `FILE.sha256`
next to each one (sha256sum's format: `HEX  NAME`).

Whoever writes a served file records its digest as it writes it (the
installer keeping its image, the netboot staging of root.squashfs, a
repository publish); the netboot menu puts the digests on the clients'
kernel command lines. A record older than its file is stale and not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re

from .files import write_atomic

SUFFIX = ".sha256"
CHUNK = 4 << 20
HEX = re.compile(r"[0-9a-f]{64}")


def is_sha256(text: str | None) -> bool:
    return bool(text) and HEX.fullmatch(text) is not None


def sha256_file(path: str | os.PathLike, length: int | None = None) -> str:
    """The SHA-256 of path (of its first `length` bytes when given)."""
    h = hashlib.sha256()
    left = length
    with open(path, "rb") as f:
        while left is None or left > 0:
            chunk = f.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    return h.hexdigest()


def record_path(path: str | os.PathLike) -> str:
    return os.fspath(path) + SUFFIX


def record_text(path: str | os.PathLike, hexdigest: str) -> str:
    return f"{hexdigest}  {os.path.basename(os.fspath(path))}\n"


def write_record(path: str | os.PathLike, hexdigest: str) -> None:
    """Record hexdigest as path's SHA-256 (path.sha256, written atomically)."""
    if not is_sha256(hexdigest):
        raise ValueError(f"not a SHA-256: {hexdigest!r}")
    write_atomic(record_path(path), record_text(path, hexdigest), 0o644)


def recorded(path: str | os.PathLike) -> str | None:
    """path's recorded SHA-256; None when there is no record, it names another
    file, or it is older than the file."""
    try:
        text = open(record_path(path), encoding="ascii").read()
        stale = os.stat(record_path(path)).st_mtime_ns < os.stat(path).st_mtime_ns
    except (OSError, UnicodeDecodeError):
        return None
    parts = text.split()
    if stale or len(parts) != 2 or not is_sha256(parts[0]) or parts[1] != os.path.basename(os.fspath(path)):
        return None
    return parts[0]


def of(path: str | os.PathLike, store: bool = True) -> str | None:
    """path's SHA-256: the record, else computed (and recorded when store);
    None when path does not exist."""
    if not os.path.isfile(path):
        return None
    found = recorded(path)
    if found:
        return found
    found = sha256_file(path)
    if store:
        with contextlib.suppress(OSError):
            write_record(path, found)
    return found
