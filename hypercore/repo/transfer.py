"""Replication: which versions to send with which parent, and both ends of one transfer.

replicate (here -> peer):  btrfs send | compress | ssh PEER hypercore repo receive ...
pull (peer -> here):       ssh PEER hypercore repo _send ... | receive here
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hypercore.errors import UserError
from hypercore.repo import btrfs, manifest, store, stream
from hypercore.repo.config import Peer
from hypercore.repo.layout import Repo, locked, number, sort_versions
from hypercore.repo.transport import remote_command, remote_error, ssh_argv
from hypercore.run import CommandError, run, spawn

LOCK_WAIT = 30.0  # seconds a receive waits for a previous (dying) one of the same name


@dataclass(frozen=True)
class Step:
    version: str
    parent: str | None  # None: a full send


def plan(name: str, ours: dict[str, str], theirs: dict[str, str], only: str | None = None,
         full: bool = False) -> list[Step]:
    """The versions the receiver lacks, oldest first, each sent against the newest
    version both sides hold by then (older than it if there is one). ours/theirs:
    version -> manifest sha256. The same version with other content is a name clash."""
    clash = sorted((v for v in set(ours) & set(theirs) if ours[v] != theirs[v]), key=number)
    if clash:
        raise UserError(f"name clash: the other side's {name}@{clash[0]} is not the same image as this one's",
                        hint="they were added separately; publish this one under another name "
                             f"(or remove {name} on the side that should not have it)")
    missing = [v for v in sort_versions(ours) if v not in theirs]
    if only is not None:
        missing = [v for v in missing if v == only]
    common = set(ours) & set(theirs)
    steps = []
    for v in missing:
        parent = None
        if common and not full:
            older = [c for c in common if number(c) < number(v)]
            parent = max(older or common, key=number)
        steps.append(Step(v, parent))
        common.add(v)
    return steps


def describe(step: Step) -> str:
    return f"incremental from {step.parent}" if step.parent else "full"


# --- asking a peer ---------------------------------------------------------------------------

def remote_inventory(peer: Peer, name: str | None = None, timeout: float = 60) -> dict:
    """The peer's `hypercore repo _inventory`: {"role", "repo", "images": {name: {v: sha}}}."""
    cmd = remote_command(peer, "_inventory", *([name] if name else []))
    try:
        out = run(ssh_argv(peer, cmd), timeout=timeout).stdout
    except CommandError as e:
        raise remote_error(peer, e.returncode, e.stderr) from None
    try:
        return json.loads(out)
    except ValueError:
        raise UserError(f"peer {peer.name} answered something that is not an inventory",
                        hint="is the same Hypercore version installed there?") from None


def local_inventory(repo: Repo, role: str, name: str | None = None) -> dict:
    btrfs.require_btrfs(repo.root)
    return {"role": role, "repo": str(repo.root), "images": store.inventory(repo, name)}


# --- the receiving end -----------------------------------------------------------------------

def receive(repo: Repo, name: str, v: str, parent: str | None, compress: str, manifest_sha: str,
            src: BinaryIO) -> tuple[str, int]:
    """Receive name@v from src into staging, verify, then rename it into place.

    Whatever fails, the staging is removed and earlier versions are untouched;
    a receive killed outright leaves staging that the next one removes first.
    """
    btrfs.require_btrfs(repo.root)
    repo.root.mkdir(parents=True, exist_ok=True)
    with locked(repo, name, wait=LOCK_WAIT):
        store.cleanup_staging(repo, name)
        have = repo.versions(name)
        if v in have:
            same = manifest.digest(repo.subvol(name, v)) == manifest_sha
            raise UserError(f"{name}@{v} is already here" + ("" if same else " with other content (a name clash)"),
                            hint="nothing to do" if same else "publish one of them under another name")
        if parent and parent not in have:
            raise UserError(f"cannot receive {name}@{v} as an increment: {parent} is not here",
                            hint="run the replication again: it sends against a version both sides hold")
        stage = repo.staging(name, v, "recv")
        try:
            pl, sink = stream.open_receive(stage, compress)
            try:
                n = stream.pump(src, sink)
            except BrokenPipeError:
                n = -1
            finally:
                try:
                    sink.close()
                except BrokenPipeError:
                    pass
            failed = pl.wait()
            if failed:
                raise UserError(f"the stream for {name}@{v} was cut or corrupt ({'; '.join(failed)})",
                                hint="nothing was kept; run the replication again")
            _check_received(stage / "snapshot", name, v, manifest_sha)
            repo.name_dir(name).mkdir(exist_ok=True)
            stage.rename(repo.version_dir(name, v))
        except BaseException:
            btrfs.delete_tree(stage)
            raise
    return f"received {name}@{v}", n


def _check_received(sub: Path, name: str, v: str, manifest_sha: str) -> None:
    if not btrfs.is_subvolume(sub) or not btrfs.is_readonly(sub):
        raise UserError(f"the stream for {name}@{v} did not produce a complete read-only snapshot",
                        hint="nothing was kept; run the replication again")
    got = manifest.digest(sub) if (sub / manifest.MANIFEST).is_file() else "none"
    if got != manifest_sha:
        raise UserError(f"{name}@{v} arrived with another manifest than the sender's",
                        hint="nothing was kept; run the replication again")
    found = manifest.problems(sub)
    if found:
        raise UserError(f"{name}@{v} arrived but fails verification: {'; '.join(found)}",
                        hint="nothing was kept; run the replication again")


# --- the sending end -------------------------------------------------------------------------

def send_to_stdout(repo: Repo, name: str, v: str, parent: str | None, compress: str) -> None:
    """`_send`: the stream of name@v on stdout (what a pulling peer reads over ssh)."""
    sys.stdout.flush()
    pl, _ = stream.open_send(repo.subvol(name, v), repo.subvol(name, parent) if parent else None,
                             compress, stdout=sys.stdout.fileno())
    failed = pl.wait()
    if failed:
        raise UserError(f"sending {name}@{v} failed ({'; '.join(failed)})", hint="run it again with --debug")


def send_version(repo: Repo, peer: Peer, name: str, step: Step, compress: str,
                 bwlimit: int | None = None, stream_file: Path | None = None) -> tuple[int, float]:
    """Send one version to peer; returns (bytes on the wire, seconds).

    stream_file (a test hook): send that file's bytes as the stream instead of btrfs send's.
    """
    sub = repo.subvol(name, step.version)
    args = [name, "--version", step.version, "--compress", compress,
            "--manifest-sha256", manifest.digest(sub), *(["--parent", step.parent] if step.parent else [])]
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        ssh = spawn(ssh_argv(peer, remote_command(peer, "receive", *args)),
                    stdin=subprocess.PIPE, stdout=out, stderr=err)
        if stream_file is not None:
            pl, src = stream.Pipeline(), open(stream_file, "rb")
        else:
            pl, src = stream.open_send(sub, repo.subvol(name, step.parent) if step.parent else None, compress)
        try:
            n = stream.pump(src, ssh.stdin, bwlimit)
        except BrokenPipeError:
            n = -1
        finally:
            src.close()
            try:
                ssh.stdin.close()
            except BrokenPipeError:
                pass
        failed = pl.wait()
        rc = ssh.wait()
        err.seek(0)
        if rc != 0:
            local = [f for f in failed if "exit -13" not in f]  # -13: SIGPIPE, the peer stopped reading
            if local:
                raise UserError(f"sending {name}@{step.version} failed here ({'; '.join(local)})",
                                hint="check the version with: hypercore repo verify " + f"{name}@{step.version}")
            raise remote_error(peer, rc, err.read().decode(errors="replace"))
        if failed:
            raise UserError(f"sending {name}@{step.version} failed ({'; '.join(failed)})",
                            hint="run it again with --debug")
    return n, time.monotonic() - start


def receive_from(repo: Repo, peer: Peer, name: str, step: Step, compress: str, manifest_sha: str
                 ) -> tuple[int, float]:
    """Pull one version from peer; returns (bytes on the wire, seconds)."""
    args = [name, "--version", step.version, "--compress", compress,
            *(["--parent", step.parent] if step.parent else [])]
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        ssh = spawn(ssh_argv(peer, remote_command(peer, "_send", *args)), stdout=subprocess.PIPE, stderr=err)
        try:
            _, n = receive(repo, name, step.version, step.parent, compress, manifest_sha, ssh.stdout)
        except UserError:
            ssh.kill() if ssh.poll() is None else None
            rc = ssh.wait()
            if rc not in (0, -9):
                err.seek(0)
                raise remote_error(peer, rc, err.read().decode(errors="replace")) from None
            raise
        finally:
            ssh.stdout.close()
        rc = ssh.wait()
        if rc != 0:
            err.seek(0)
            raise remote_error(peer, rc, err.read().decode(errors="replace"))
    return n, time.monotonic() - start
