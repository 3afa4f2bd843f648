"""`hypercore repo authorize KEY [--revoke]`: a peer's replication key added
to (or removed from) /etc/hypercore/repo/authorized_keys after the install,
with the same forced command as the installer's `repo` step, and the sshd
drop-in put in place when it is missing (then sshd reloads)."""

from __future__ import annotations

import os

from hypercore import run
from hypercore.files import write_atomic
from hypercore.repo import access


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def authorize(key: str, present: bool, keys_path: str = access.AUTHORIZED_KEYS,
              dropin_path: str = access.SSHD_DROPIN) -> str:
    kind, _blob, comment = access.parse_public_key(key)  # a bad key changes nothing
    who = f"{kind} key{f' {comment!r}' if comment else ''}"
    text, changed = access.with_key(_read(keys_path), key, present)
    if not changed:
        return f"{who} {'is already' if present else 'was not'} authorized in {keys_path}"
    os.makedirs(os.path.dirname(keys_path), mode=0o700, exist_ok=True)
    write_atomic(keys_path, text, 0o600)
    dropin = access.sshd_dropin(keys_path)
    if _read(dropin_path) != dropin:
        os.makedirs(os.path.dirname(dropin_path), mode=0o755, exist_ok=True)
        write_atomic(dropin_path, dropin, 0o644)
        if dropin_path == access.SSHD_DROPIN:  # this system's sshd (not a test's copy)
            run.run(["systemctl", "try-reload-or-restart", "ssh.service"], check=False)
    return (f"{who} may now replicate to and pull from this node (forced command: {access.FORCED_COMMAND})"
            if present else f"{who} removed from {keys_path}")
