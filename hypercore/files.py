"""Writing a file so that readers see the old content or the new, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile


def write_atomic(path: str | os.PathLike, data: str | bytes, mode: int = 0o644,
                 keep_owner: bool = False) -> None:
    """Write data to a temporary file next to path, fsync it, then rename it
    over path. keep_owner: the new file gets the old file's owner and group."""
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
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if owner:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
