"""manifest.json: what a version holds, with the sha256 of every file.

    {"name": "debian-12", "version": "v2", "created": "2026-11-22 10:00:00",
     "source": "host:/path/of/the/added/file", "image": "debian-12.qcow2",
     "size": 123, "files": {"debian-12.qcow2": {"size": 123, "sha256": "..."}}}

The receiver checks the manifest's own sha256 against the sender's, then every
file against the manifest; `verify` does the second part at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MANIFEST = "manifest.json"
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def build(name: str, version: str, image: str, subvol: Path, source: str, created: str) -> dict:
    files = {}
    for p in sorted(subvol.rglob("*")):
        rel = p.relative_to(subvol).as_posix()
        if p.is_file() and rel != MANIFEST:
            files[rel] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
    return {"name": name, "version": version, "created": created, "source": source,
            "image": image, "size": sum(f["size"] for f in files.values()), "files": files}


def dumps(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def write(subvol: Path, manifest: dict) -> str:
    """Write manifest.json into subvol; return its sha256."""
    data = dumps(manifest)
    with open(subvol / MANIFEST, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def digest(subvol: Path) -> str:
    return sha256_file(subvol / MANIFEST)


def load(subvol: Path) -> dict:
    return json.loads((subvol / MANIFEST).read_text())


def problems(subvol: Path) -> list[str]:
    """Every difference between the files in subvol and its manifest (empty: all good)."""
    try:
        m = load(subvol)
        files = m["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{MANIFEST} is missing or unreadable ({e})"]
    found = {p.relative_to(subvol).as_posix() for p in subvol.rglob("*") if p.is_file()} - {MANIFEST}
    out = [f"{rel}: not in the manifest" for rel in sorted(found - set(files))]
    for rel, want in sorted(files.items()):
        p = subvol / rel
        if not p.is_file():
            out.append(f"{rel}: missing")
        elif p.stat().st_size != want["size"]:
            out.append(f"{rel}: size {p.stat().st_size}, manifest says {want['size']}")
        elif sha256_file(p) != want["sha256"]:
            out.append(f"{rel}: sha256 differs from the manifest")
    return out
