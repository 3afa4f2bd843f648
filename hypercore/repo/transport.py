"""SSH to a peer and the stream compressors: argument lists, and errors made readable.

The remote command is one string (that is what ssh carries), built with
shlex.join from checked names and versions only.
"""

from __future__ import annotations

import shlex

from hypercore.errors import UserError
from hypercore.repo.config import Peer

COMPRESSORS = ("zstd", "lz4", "none")
CONNECT_TIMEOUT = 10


def compress_argv(kind: str) -> list[str] | None:
    return {"zstd": ["zstd", "-q", "-c", "-3", "-T0"], "lz4": ["lz4", "-q", "-c"], "none": None}[kind]


def decompress_argv(kind: str) -> list[str] | None:
    return {"zstd": ["zstd", "-q", "-d", "-c"], "lz4": ["lz4", "-q", "-d", "-c"], "none": None}[kind]


def remote_command(peer: Peer, verb: str, *args: str) -> str:
    """`hypercore repo [--repo-dir DIR] VERB ARGS...` as the one string ssh sends."""
    argv = ["hypercore", "repo", *(["--repo-dir", peer.repo_dir] if peer.repo_dir else []), verb, *args]
    return shlex.join(argv)


def ssh_argv(peer: Peer, command: str) -> list[str]:
    argv = ["ssh", "-T", "-p", str(peer.port),
            "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
    if peer.identity_file:
        argv += ["-i", peer.identity_file, "-o", "IdentitiesOnly=yes"]
    for opt in peer.ssh_options:
        argv += ["-o", opt]
    return argv + ["--", peer.address, command]


def remote_error(peer: Peer, returncode: int, stderr: str) -> UserError:
    """What went wrong on the other side of ssh, as one line and a hint."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if returncode == 255:
        why = lines[-1] if lines else "ssh failed"
        return UserError(f"peer {peer.name} ({peer.describe()}) is unreachable: {why}",
                         hint=f"check that it is up and that `ssh -p {peer.port} {peer.address}` "
                              "logs in without a password")
    for i, ln in enumerate(lines):
        if ln.startswith("hypercore: "):
            hint = lines[i + 1].strip()[len("hint: "):] if i + 1 < len(lines) and \
                lines[i + 1].strip().startswith("hint: ") else None
            return UserError(f"peer {peer.name}: {ln[len('hypercore: '):]}", hint=hint)
    if returncode == 127:
        return UserError(f"peer {peer.name} has no `hypercore` command",
                         hint="install Hypercore there (or put it on the PATH of SSH sessions)")
    tail = lines[-1] if lines else f"exit {returncode}"
    return UserError(f"peer {peer.name}: the remote command failed: {tail}",
                     hint="run it with --debug, and look at the peer's side")
