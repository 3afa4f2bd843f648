"""Two appliances on one host, for the repository's integration tests.

Each node has its own BTRFS filesystem on a loop device, its own network
namespace (the two joined by a veth pair), and a real sshd listening on a
non-standard port inside its namespace with a temporary host key and an
authorized_keys made here. hypercore commands of a node run inside its
namespace. Everything is torn down in close(), whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hypercore.run import run, spawn

TOP = Path(__file__).resolve().parents[2]
PORT = 2299
GiB = 1 << 30


@dataclass
class Node:
    name: str
    ns: str
    ip: str
    dir: Path
    dev: str = ""
    sshd: subprocess.Popen | None = None
    peers: list = field(default_factory=list)

    @property
    def mnt(self) -> Path:
        return self.dir / "mnt"

    @property
    def repo(self) -> Path:
        """Inside the state directory, as on a node (/var/lib/hypercore/images/repo)."""
        return self.state / "images" / "repo"

    @property
    def state(self) -> Path:
        """The BTRFS filesystem, as /var/lib/hypercore on a node."""
        return self.mnt

    @property
    def config(self) -> Path:
        return self.dir / "repo.yaml"

    def env(self) -> dict:
        return {"PYTHONPATH": f"{TOP}:{TOP / 'installer'}:{TOP / 'netboot'}", "HYPERCORE_REPO_DIR": str(self.repo),
                "HYPERCORE_REPO_CONFIG": str(self.config), "HYPERCORE_STATE_DIR": str(self.state),
                "HYPERCORE_STORAGE": "file", "PATH": f"{self.dir.parent / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin"}

    def argv(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, sys.executable, "-m", "hypercore", "repo", *args]

    def hc(self, *args: str, ok: bool | None = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """hypercore repo ARGS inside this node's namespace."""
        p = subprocess.run(self.argv(*args), env={**os.environ, **self.env()}, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if ok is True and p.returncode != 0:
            raise AssertionError(f"[{self.name}] repo {' '.join(args)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        if ok is False and p.returncode == 0:
            raise AssertionError(f"[{self.name}] repo {' '.join(args)} should have failed:\n{p.stdout}{p.stderr}")
        return p

    def start(self, *args: str) -> subprocess.Popen:
        """hypercore repo ARGS in the background (own process group, so a test can kill it all)."""
        return subprocess.Popen(self.argv(*args), env={**os.environ, **self.env()}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def versions(self, name: str) -> list[str]:
        rows = json.loads(self.hc("list", name, "--json").stdout)
        return [r["version"] for r in rows]


class Pair:
    """Nodes a and b. Call close() (the fixture does) to tear everything down."""

    def __init__(self, fs_size: int = GiB):
        self.tag = secrets.token_hex(3)
        self.top = Path(tempfile.mkdtemp(prefix=f"hcrepo-{self.tag}-", dir="/tmp"))
        self.a = Node("a", f"hcrepo-{self.tag}-a", "10.231.77.1", self.top / "a")
        self.b = Node("b", f"hcrepo-{self.tag}-b", "10.231.77.2", self.top / "b")
        self._cleanup: list = []
        try:
            self._setup(fs_size)
        except BaseException:
            self.close()
            raise

    def _setup(self, fs_size: int) -> None:
        bindir = self.top / "bin"
        bindir.mkdir()
        wrapper = bindir / "hypercore"
        wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m hypercore \"$@\"\n")
        wrapper.chmod(0o755)
        key = self.top / "client_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
        for n in (self.a, self.b):
            n.dir.mkdir()
            n.mnt.mkdir()
            img = n.dir / "fs.img"
            with open(img, "wb") as f:
                f.truncate(fs_size)
            n.dev = run(["losetup", "--find", "--show", str(img)]).stdout.strip()
            self._cleanup.append(lambda d=n.dev: run(["losetup", "-d", d], check=False))
            run(["mkfs.btrfs", "-q", "-f", n.dev])
            run(["mount", n.dev, str(n.mnt)])
            self._cleanup.append(lambda m=n.mnt: run(["umount", str(m)], check=False).returncode
                                 and run(["umount", "-l", str(m)], check=False))
            run(["ip", "netns", "add", n.ns])
            self._cleanup.append(lambda ns=n.ns: run(["ip", "netns", "del", ns], check=False))
            run(["ip", "-n", n.ns, "link", "set", "lo", "up"])
        run(["ip", "link", "add", f"hcr{self.tag}a", "netns", self.a.ns, "type", "veth",
             "peer", "name", f"hcr{self.tag}b", "netns", self.b.ns])
        for n in (self.a, self.b):
            dev = f"hcr{self.tag}{n.name}"
            run(["ip", "-n", n.ns, "addr", "add", f"{n.ip}/24", "dev", dev])
            run(["ip", "-n", n.ns, "link", "set", dev, "up"])
        known = self.top / "known_hosts"
        for n in (self.a, self.b):
            self._sshd(n, key)
            host_pub = (n.dir / "host_key.pub").read_text().split()
            with open(known, "a") as f:
                f.write(f"[{n.ip}]:{PORT} {host_pub[0]} {host_pub[1]}\n")
        for n, other in ((self.a, self.b), (self.b, self.a)):
            self.write_config(n, [self.peer_entry(other)])
        for n in (self.a, self.b):
            self._wait_ssh(n, self.a if n is self.b else self.b)

    def peer_entry(self, other: Node, **extra) -> dict:
        return {"name": f"node-{other.name}", "address": f"root@{other.ip}", "port": PORT,
                "identity_file": str(self.top / "client_key"), "repo_dir": str(other.repo),
                "ssh_options": [f"UserKnownHostsFile={self.top / 'known_hosts'}",
                                "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes",
                                "LogLevel=ERROR"], **extra}

    def write_config(self, n: Node, peers: list[dict], role: str = "image-server") -> None:
        n.config.write_text(yaml.safe_dump({"role": role, "peers": peers}))

    def _sshd(self, n: Node, client_key: Path, include: Path | None = None) -> None:
        """sshd in n's namespace. include: an sshd_config drop-in read first (its settings win, as
        Debian's sshd_config.d); with it, sshd also passes HYPERCORE_REPO_DIR (a forced
        `hypercore repo serve-ssh` only serves this node's own repository)."""
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        if not (n.dir / "host_key").exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(n.dir / "host_key")])
        shutil.copy(f"{client_key}.pub", n.dir / "authorized_keys")
        env = " ".join(f"{k}={v}" for k, v in n.env().items() if k != "HYPERCORE_REPO_DIR" or include)
        conf = n.dir / "sshd_config"
        conf.write_text("\n".join([
            *([f"Include {include}"] if include else []),
            f"Port {PORT}", f"ListenAddress {n.ip}", f"HostKey {n.dir / 'host_key'}",
            f"PidFile {n.dir / 'sshd.pid'}", f"AuthorizedKeysFile {n.dir / 'authorized_keys'}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "X11Forwarding no",
            f"SetEnv {env}", "LogLevel INFO", ""]))
        log = open(n.dir / "sshd.log", "ab")
        n.sshd = spawn(["ip", "netns", "exec", n.ns, "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)],
                       stdout=log, stderr=log)
        log.close()
        self._cleanup.append(lambda p=n.sshd: (p.kill(), p.wait()))

    def restart_sshd(self, n: Node, include: Path) -> None:
        """Restart n's sshd with the drop-in include (e.g. the installer's 10-hypercore-repo.conf)."""
        n.sshd.kill()
        n.sshd.wait()
        self._sshd(n, self.top / "client_key", include)

    def _wait_ssh(self, client: Node, server: Node, timeout: float = 10) -> None:
        peer = self.peer_entry(server)
        argv = ["ip", "netns", "exec", client.ns, "ssh", "-p", str(PORT), "-i", peer["identity_file"],
                "-o", "BatchMode=yes", *[x for o in peer["ssh_options"] for x in ("-o", o)], peer["address"], "true"]
        deadline = time.monotonic() + timeout
        while True:
            p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if p.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd of {server.name} not reachable: {p.stderr}\n"
                                     + (server.dir / "sshd.log").read_text())
            time.sleep(0.1)

    def close(self) -> None:
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception:  # noqa: BLE001  (tear down the rest whatever happens)
                pass
        self._cleanup.clear()
        shutil.rmtree(self.top, ignore_errors=True)


def write_image(path: Path, size: int, seed: int, blocks: list[tuple[int, int]]) -> None:
    """A sparse raw image of size bytes with pseudo-random data at (offset, length) blocks."""
    import random
    rnd = random.Random(seed)
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.truncate(size)
        for off, length in blocks:
            f.seek(off)
            f.write(rnd.randbytes(length))
