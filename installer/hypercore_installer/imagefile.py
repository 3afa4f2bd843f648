"""Copying a Hypercore image from a disk into a sparse file."""

from __future__ import annotations

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
