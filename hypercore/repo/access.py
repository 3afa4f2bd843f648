"""Replication access between appliances, as the answer file's `repo` section
asks (written at first boot by the installer's `repo` step):

    /etc/hypercore/repo.yaml                       role and peers (repo.schema.json)
    /etc/hypercore/repo/id_ed25519                 this node's replication key (0600); identity_file of every peer
    /etc/hypercore/repo/authorized_keys            the peers' keys, each forced to `hypercore repo serve-ssh`
    /etc/hypercore/repo/known_hosts                the peers' host keys, learnt on first contact
    /etc/ssh/sshd_config.d/10-hypercore-repo.conf  makes sshd read that authorized_keys too

Pure text builders; nothing here runs a command or writes a file.
"""

from __future__ import annotations

import yaml

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


def authorized_line(key: str) -> str:
    """One peer's public key, allowed to run nothing but the replication commands."""
    return f'command="{FORCED_COMMAND}",{",".join(RESTRICTIONS)} {key.strip()}'


def authorized_keys(keys) -> str:
    return ("# Peers allowed to replicate to and pull from this node's golden-image repository;\n"
            f"# each key can only run `{FORCED_COMMAND}`. Written from the answers' repo.authorized_keys.\n"
            + "".join(authorized_line(k) + "\n" for k in keys))


def sshd_dropin(authorized_keys_path: str = AUTHORIZED_KEYS) -> str:
    """sshd reads the users' own keys as before, and the repository's peers' keys."""
    return ("# Written by the Hypercore installer's first boot (golden-image repository).\n"
            f"AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 {authorized_keys_path}\n")
