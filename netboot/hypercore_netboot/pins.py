"""The SHA-256 of each file the menu's entries download, for their kernel
command lines: root.squashfs and hypercore.raw from the records written next
to them when they were written (computed and recorded when missing), the
answer file and the image's description hashed as they are now (small files
the operator or the installer writes)."""

from __future__ import annotations

import hashlib
import os

from hypercore import digest

from .render import ANSWERS, IMAGE, IMAGE_JSON, ROOT_IMAGE


def _small(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


def served(http_root: str, store: bool = True) -> dict[str, str]:
    """File name -> SHA-256 of each menu download present in http_root; store:
    record a computed digest next to its file (apply; render changes nothing)."""
    out = {name: digest.of(os.path.join(http_root, name), store) for name in (ROOT_IMAGE, IMAGE)}
    out |= {name: _small(os.path.join(http_root, name)) for name in (ANSWERS, IMAGE_JSON)}
    return {k: v for k, v in out.items() if v}
