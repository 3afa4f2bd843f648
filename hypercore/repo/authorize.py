"""`hypercore repo authorize KEY [--peer NAME] [--revoke]`: a peer's replication
key added to (or removed from) the authorized_keys next to repo.yaml, with the
same forced command as the installer's `repo` step, and the sshd drop-in put
in place when it is missing.

Where: for the system's /etc/hypercore/repo.yaml, /etc/hypercore/repo/authorized_keys
and /etc/ssh/sshd_config.d/10-hypercore-repo.conf (then sshd reloads); for a
repo.yaml elsewhere ($HYPERCORE_REPO_CONFIG or --config, as every repo command
reads it), both files beside it, under DIR/repo/, and the system's sshd is left
alone. With --peer the key may only do what that peer's role allows (serve.py)."""

from __future__ import annotations

import os

from hypercore import run
from hypercore.files import write_atomic
from hypercore.repo import access, config, serve


def locations(config_path: str) -> tuple[str, str]:
    """(authorized_keys, sshd drop-in) that go with the repo.yaml at config_path."""
    path = os.path.abspath(config_path)
    if path == config.DEFAULT:
        return access.AUTHORIZED_KEYS, access.SSHD_DROPIN
    base = os.path.join(os.path.dirname(path), "repo")
    return os.path.join(base, "authorized_keys"), os.path.join(base, "sshd_config.d", os.path.basename(access.SSHD_DROPIN))


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def authorize(key: str, present: bool, keys_path: str = access.AUTHORIZED_KEYS,
              dropin_path: str = access.SSHD_DROPIN, peer: str | None = None,
              cfg: config.Config | None = None) -> str:
    """peer: bind the key to that peer of cfg (its role's verbs only)."""
    kind, _blob, comment = access.parse_public_key(key)  # a bad key changes nothing
    who = f"{kind} key{f' {comment!r}' if comment else ''}"
    rights = "may now replicate to and pull from this node"
    if peer is not None and present:
        role = (cfg or config.load()).peer(peer).role          # an unknown peer changes nothing
        rights = (f"is peer {peer}'s ({role}): it may now "
                  + ("replicate to and pull from this node" if "receive" in serve.ROLE_VERBS[role]
                     else "only pull from this node"))
    text, changed = access.with_key(_read(keys_path), key, present, peer)
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
    if not present:
        return f"{who} removed from {keys_path}"
    return f"{who} {rights} (forced command: {access.FORCED_COMMAND}; in {keys_path})"

