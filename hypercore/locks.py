"""One lock per VM (and one for images) so two commands never change the same thing at once."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager

from hypercore.errors import UserError
from hypercore.state import StateDir


@contextmanager
def locked(state: StateDir, what: str, wait: bool = False):
    """what: 'vm-NAME' or 'images'. Without wait, a busy lock is a UserError."""
    d = state.root / "locks"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{what}.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise UserError(f"another hypercore command is working on {what}",
                            hint="wait for it to finish and try again") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
