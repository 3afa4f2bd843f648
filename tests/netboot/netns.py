"""Network namespaces for the netboot integration tests: a "switch" namespace
holding a bridge, and hosts (server, site DHCP, client) each joined to it by a
veth pair. Nothing leaves these namespaces; everything is deleted on close."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

from hypercore.run import run, spawn, stop


class Lab:
    def __init__(self):
        self.tag = uuid.uuid4().hex[:6]
        self.switch = f"hcnb-{self.tag}-sw"
        self.hosts: list[str] = []
        self.procs: list[subprocess.Popen] = []
        run(["ip", "netns", "add", self.switch])
        self.ns(self.switch, "ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        self.ns(self.switch, "ip", "link", "set", "br0", "up")
        self.ns(self.switch, "ip", "link", "set", "lo", "up")

    def add_host(self, name: str, address: str | None = None, iface: str = "eth0") -> str:
        """A namespace with iface on the switch (address in CIDR, or none); returns its name."""
        ns = f"hcnb-{self.tag}-{name}"
        port = f"p{self.tag}{len(self.hosts)}"
        run(["ip", "netns", "add", ns])
        self.hosts.append(ns)
        run(["ip", "link", "add", port, "netns", self.switch, "type", "veth", "peer", "name", iface, "netns", ns])
        self.ns(self.switch, "ip", "link", "set", port, "master", "br0", "up")
        self.ns(ns, "ip", "link", "set", "lo", "up")
        self.ns(ns, "ip", "link", "set", iface, "up")
        if address:
            self.ns(ns, "ip", "addr", "add", address, "dev", iface)
        return ns

    def ns(self, ns: str, *argv, **kw):
        return run(["ip", "netns", "exec", ns, *argv], **kw)

    def spawn(self, ns: str, *argv, log: str | None = None, env=None) -> subprocess.Popen:
        out = open(log, "w") if log else subprocess.DEVNULL
        proc = spawn(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def close(self):
        for proc in self.procs:
            stop(proc)
        for ns in [*self.hosts, self.switch]:
            subprocess.run(["ip", "netns", "delete", ns], stderr=subprocess.DEVNULL, check=False)


def wait_for(fn, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def repo_env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {"PYTHONPATH": os.pathsep.join(os.path.join(root, p) for p in (".", "installer", "netboot"))}
