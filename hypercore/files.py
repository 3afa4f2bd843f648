"""Writing a file so that readers see the old content or the new, never half,
and so that after a crash the file is there with one of the two: the data is
fsynced before the rename, the directory after it."""

from __future__ import annotations

import contextlib
import os
import tempfile


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename (or a new or removed name) in directory path durable."""
    fd = os.open(os.fspath(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """os.replace(src, dst), durable: dst's directory is fsynced after."""
    os.replace(src, dst)
    fsync_dir(os.path.dirname(os.fspath(dst)) or ".")


def write_atomic(path: str | os.PathLike, data: str | bytes, mode: int = 0o644,
                 keep_owner: bool = False) -> None:
    """Write data to a temporary file next to path, fsync it, rename it over
    path, then fsync the directory. keep_owner: the new file gets the old
    file's owner and group."""
    path = os.fspath(path)
    raw = data.encode() if isinstance(data, str) else data
    directory = os.path.dirname(path) or "."
    owner = None
    if keep_owner:
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(path)
            owner = (st.st_uid, st.st_gid)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if owner:
                os.fchown(f.fileno(), *owner)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
