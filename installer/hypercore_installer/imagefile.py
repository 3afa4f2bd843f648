"""Copying a Hypercore image from a disk into a sparse file, and packing it
for network installs: zstd-compressed, hashed as it is written."""

from __future__ import annotations

import hashlib
import os

CHUNK = 4 << 20
_ZERO = bytes(CHUNK)


def copy_sparse(source: str, path: str, nbytes: int) -> None:
    """The first nbytes of source (opened read-only) into the file path; runs
    of zeros become holes. The file is fsynced; a short source is an OSError."""
    done = 0
    with open(source, "rb", buffering=0) as src, open(path, "wb") as out:
        while done < nbytes:
            chunk = src.read(min(CHUNK, nbytes - done))
            if not chunk:
                raise OSError(f"{source} ended after {done} of {nbytes} bytes")
            if chunk != _ZERO[: len(chunk)]:
                out.seek(done)
                out.write(chunk)
            done += len(chunk)
        out.truncate(nbytes)
        out.flush()
        os.fsync(out.fileno())


def compress(path: str, out_path: str, level: int = 1) -> str:
    """path as one zstd frame in out_path (fsynced); returns the SHA-256 of the
    compressed bytes, computed as they are written: the digest clients check
    while they download, and nothing is read twice. Runs of zeros (most of a
    sparse image) cost next to nothing."""
    import zstandard
    h = hashlib.sha256()
    size = os.path.getsize(path)
    cobj = zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True).compressobj(size=size)
    with open(path, "rb", buffering=0) as src, open(out_path, "wb") as out:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            data = cobj.compress(chunk)
            h.update(data)
            out.write(data)
        data = cobj.flush()
        h.update(data)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()
