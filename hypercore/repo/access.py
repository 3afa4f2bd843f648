"""Replication access between appliances, as the answer file's `repo` section
asks (written at first boot by the installer's `repo` step):

    /etc/hypercore/repo.yaml                       role and peers (repo.schema.json)
    /etc/hypercore/repo/id_ed25519                 this node's replication key (0600); identity_file of every peer
    /etc/hypercore/repo/authorized_keys            the peers' keys, each forced to `hypercore repo serve-ssh`
    /etc/hypercore/repo/known_hosts                the peers' host keys, learnt on first contact
    /etc/ssh/sshd_config.d/10-hypercore-repo.conf  makes sshd read that authorized_keys too

Pure text builders and parsers; nothing here runs a command or writes a file.
"""

from __future__ import annotations

import base64
import binascii

import yaml

from hypercore.errors import UserError

KEY = "/etc/hypercore/repo/id_ed25519"
AUTHORIZED_KEYS = "/etc/hypercore/repo/authorized_keys"
KNOWN_HOSTS = "/etc/hypercore/repo/known_hosts"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/10-hypercore-repo.conf"
FORCED_COMMAND = "hypercore repo serve-ssh"
# `restrict` turns off every forwarding, the pty and ~/.ssh/rc; the rest says so for older readers.
RESTRICTIONS = ("restrict", "no-pty", "no-port-forwarding", "no-agent-forwarding", "no-X11-forwarding",
                "no-user-rc")


def repo_config(section: dict, identity_file: str = KEY, known_hosts: str = KNOWN_HOSTS) -> dict:
    """The repo.yaml document for the answers' `repo` section: every peer is
    reached with this node's key; a peer's host key is learnt on first contact."""
    peers = [{"name": p["name"], "address": p["address"], "port": p.get("port", 22),
              "role": p.get("role", "image-server"), "identity_file": identity_file,
              "ssh_options": ["StrictHostKeyChecking=accept-new", f"UserKnownHostsFile={known_hosts}"]}
             for p in section.get("peers") or []]
    return {"role": section.get("role", "image-server"), "peers": peers}


def repo_yaml(config: dict) -> str:
    return ("# Written at first boot from the `repo` section of /etc/hypercore/answers.yaml.\n"
            "# Schema: hypercore/repo/repo.schema.json\n" + yaml.safe_dump(config, sort_keys=False))


def authorized_line(key: str, peer: str | None = None) -> str:
    """One peer's public key, allowed to run nothing but the replication commands;
    with peer (a name in repo.yaml) only those of that peer's role (serve.py)."""
    command = FORCED_COMMAND + (f" --peer {peer}" if peer else "")
    return f'command="{command}",{",".join(RESTRICTIONS)} {key.strip()}'


def authorized_entries(section: dict) -> list[tuple[str, str | None]]:
    """The answers' `repo` keys: each peer's own `key` (bound to that peer and its
    role), then the plain `authorized_keys` (allowed every replication command)."""
    return ([(p["key"], p["name"]) for p in section.get("peers") or [] if p.get("key")]
            + [(k, None) for k in section.get("authorized_keys") or []])


def authorized_keys(entries) -> str:
    """entries: key lines, or (key, peer name or None); a key given twice keeps its first entry."""
    lines, seen = [], set()
    for entry in entries:
        key, peer = (entry, None) if isinstance(entry, str) else entry
        ident = tuple(key.split()[:2])
        if ident not in seen:
            seen.add(ident)
            lines.append(authorized_line(key, peer) + "\n")
    return ("# Peers allowed to replicate to and pull from this node's golden-image repository;\n"
            f"# each key can only run `{FORCED_COMMAND}` (with --peer NAME: only what that peer's role\n"
            "# in repo.yaml allows; a cache only pulls). Written from the answers' repo section.\n"
            + "".join(lines))


def sshd_dropin(authorized_keys_path: str = AUTHORIZED_KEYS) -> str:
    """sshd reads the users' own keys as before, and the repository's peers' keys."""
    return ("# Written by the Hypercore installer's first boot (golden-image repository).\n"
            f"AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 {authorized_keys_path}\n")


KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-rsa")


def _ssh_strings(blob: bytes) -> list[bytes] | None:
    """The SSH strings (u32 length, bytes) a key blob is made of; None when it does not split into them."""
    out, i = [], 0
    while i < len(blob):
        if i + 4 > len(blob):
            return None
        n = int.from_bytes(blob[i:i + 4], "big")
        if i + 4 + n > len(blob):
            return None
        out.append(blob[i + 4:i + 4 + n])
        i += 4 + n
    return out


# SSH strings in each type's key blob: the type, then its key (ed25519: 32 bytes;
# RSA: e and n; ECDSA: curve and point), then for security keys (sk-) the application.
KEY_PARTS = {"ssh-ed25519": 2, "sk-ssh-ed25519@openssh.com": 3, "ssh-rsa": 3, "ecdsa-sha2-nistp256": 3,
             "ecdsa-sha2-nistp384": 3, "ecdsa-sha2-nistp521": 3, "sk-ecdsa-sha2-nistp256@openssh.com": 4}


def _complete(kind: str, blob: bytes) -> bool:
    """Whether blob is all of a `kind` key (none of it cut off, nothing after it)."""
    parts = _ssh_strings(blob)
    if parts is None or len(parts) != KEY_PARTS[kind] or not all(parts[1:]):
        return False
    return len(parts[1]) == 32 if "ed25519" in kind else True


def parse_public_key(text: str) -> tuple[str, str, str]:
    """(type, base64 blob, comment) of one OpenSSH public key line; a
    UserError for anything else -- in particular a line with options in
    front (`command=...`), which would undo the forced command."""
    words = text.strip().split(None, 2)
    hint = "give the peer's key as `hypercore repo peers` prints it there: TYPE BASE64 [COMMENT]"
    if len(text.strip().splitlines()) != 1 or len(words) < 2:
        raise UserError("the key is not one OpenSSH public key line", hint=hint)
    if words[0] not in KEY_TYPES:
        raise UserError(f"{words[0][:40]!r} is not an SSH public key type (options are not accepted)", hint=hint)
    try:
        blob = base64.b64decode(words[1], validate=True)
    except (binascii.Error, ValueError):
        raise UserError("the key's base64 part is damaged", hint=hint) from None
    # The blob starts with its own type as an SSH string: the two must agree.
    if blob[4:4 + len(words[0])] != words[0].encode():
        raise UserError(f"the key's data is not a {words[0]} key", hint=hint)
    if not _complete(words[0], blob):
        raise UserError(f"the key's data is cut off or damaged (not a whole {words[0]} key)", hint=hint)
    return words[0], words[1], words[2] if len(words) > 2 else ""


def key_lines(text: str) -> list[tuple[str, str]]:
    """(type, blob) of every key an authorized_keys text holds, in order."""
    out = []
    for line in text.splitlines():
        words = line.split()
        kind = next((i for i, w in enumerate(words[:-1]) if w in KEY_TYPES), None)
        if kind is not None:
            out.append((words[kind], words[kind + 1]))
    return out


def with_key(text: str, key: str, present: bool, peer: str | None = None) -> tuple[str, bool]:
    """The authorized_keys text with `key` added (present; bound to peer when
    given) or removed, and whether that changed anything. A key already there
    with another binding gets the new one. Other lines stay as they are."""
    kind, blob, _ = parse_public_key(key)
    have = [line for line in text.splitlines() if (kind, blob) in key_lines(line)]
    if present and have == [authorized_line(key, peer)]:
        return text, False
    if not present and not have:
        return text, False
    kept = [line for line in text.splitlines() if (kind, blob) not in key_lines(line)]
    text = "\n".join(kept) + "\n" if kept else ""
    if present:
        text = (text or authorized_keys([])) + authorized_line(key, peer) + "\n"
    return text, True
