"""Replication through the forced command, with the keys and files the
installer's first-boot `repo` step makes: two nodes in network namespaces
with sshd reading the step's authorized_keys through the step's drop-in."""

from __future__ import annotations

import io
import os
import subprocess
import time

import pytest
import yaml

from hypercore_installer.firstboot.context import Context
from hypercore_installer.firstboot.host import Host
from hypercore_installer.firstboot.journal import Journal
from hypercore_installer.firstboot.paths import Paths
from hypercore_installer.firstboot.steps_repo import setup_repo
from tests.repo.nodes import PORT, write_image

pytestmark = pytest.mark.integration
MiB = 1 << 20


class NodeHost(Host):
    """The real machine, except that sshd here is the test's own (restarted by the test)."""

    def run(self, argv, **kw):
        if argv[0] == "systemctl":
            return subprocess.CompletedProcess(argv, 0, "", "")
        return super().run(argv, **kw)


def first_boot(node, section: dict) -> Context:
    """The installer's repo step for node, under node.dir/root."""
    paths = Paths(str(node.dir / "root"))
    os.makedirs(paths.state_dir, exist_ok=True)
    ctx = Context(host=NodeHost(out=io.StringIO()), paths=paths, answers={"repo": section}, record=None,
                  journal=Journal(paths.state_dir), facts={"host": f"node-{node.name}"}, out=io.StringIO())
    setup_repo(ctx)
    return ctx


def ssh_as(ctx: Context, client, server, *command: str) -> subprocess.CompletedProcess:
    """ssh from client to server with the key the step made for client."""
    p = ctx.paths
    argv = ["ip", "netns", "exec", client.ns, "ssh", "-T", "-p", str(PORT), "-i", p.repo_key,
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={p.repo_known_hosts}",
            "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR", f"root@{server.ip}", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_replication_works_through_the_forced_command_and_nothing_else(pair):
    a, b = pair.a, pair.b
    sections = {n.name: {"role": "image-server" if n is a else "cache",
                         "peers": [{"name": f"node-{o.name}", "address": f"root@{o.ip}", "port": PORT,
                                    "role": "cache" if n is a else "image-server"}]}
                for n, o in ((a, b), (b, a))}
    ctx = {n.name: first_boot(n, sections[n.name]) for n in (a, b)}
    keys = {n: c.facts["repo_key"] for n, c in ctx.items()}
    assert keys["a"] != keys["b"] and all(k.startswith("ssh-ed25519 ") for k in keys.values())
    # The operator puts each node's printed key in the other's answers; the step runs again. On a,
    # b's key is the cache peer's own `key` (bound to its role); on b, a's is a plain authorized key.
    sections["a"]["peers"][0]["key"] = keys["b"]
    sections["b"]["authorized_keys"] = [keys["a"]]
    for n, other in ((a, b), (b, a)):
        ctx[n.name] = first_boot(n, sections[n.name])
        assert ctx[n.name].facts["repo_key"] == keys[n.name]          # the key is kept
        # The step's repo.yaml as it is, plus where the test's repositories are.
        cfg = yaml.safe_load(open(ctx[n.name].paths.repo_config))
        cfg["peers"][0]["repo_dir"] = str(other.repo)
        n.config.write_text(yaml.safe_dump(cfg))
        pair.restart_sshd(n, include=ctx[n.name].paths.sshd_dropin)

    deadline = time.monotonic() + 15
    while (p := a.hc("peers", ok=None)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert p.returncode == 0, p.stderr
    assert keys["a"] in p.stdout and "node-b" in p.stdout and "reachable" in p.stdout

    img = pair.top / "disk.raw"
    write_image(img, 16 * MiB, 1, [(0, 2 * MiB)])
    a.hc("add", "deb", str(img))
    a.hc("replicate", "deb", "--to", "node-b")                        # receive, over the forced command
    write_image(img, 16 * MiB, 2, [(4 * MiB, MiB)])
    a.hc("add", "deb", str(img))
    b.hc("pull", "deb", "--from", "node-a")                           # _send and _inventory
    assert b.versions("deb") == ["v1", "v2"]
    b.hc("verify", "deb")

    # The same key, anything else: refused, one line, nothing done.
    marker = pair.top / "pwned"
    for command in (["id"], ["rm", "-rf", str(b.repo)], ["sh", "-c", f"touch {marker}"],
                    ["hypercore", "repo", "_inventory", f"deb; touch {marker}"],
                    ["hypercore", "repo", "_inventory;", "touch", str(marker)],
                    ["hypercore", "repo", "prune", "deb", "--keep", "1"],
                    ["hypercore", "repo", "--repo-dir", str(a.repo), "_inventory"]):
        p = ssh_as(ctx["a"], a, b, *command)
        assert p.returncode == 1, (command, p.stdout, p.stderr)
        assert p.stderr.startswith("hypercore: refused over ssh: "), (command, p.stderr)
        assert "uid=" not in p.stdout and not marker.exists()
    assert b.versions("deb") == ["v1", "v2"]
    # The cache pulls from the image server but never pushes to it: refused in one line, a unchanged.
    write_image(img, 16 * MiB, 3, [(8 * MiB, MiB)])
    b.hc("add", "deb", str(img))
    p = b.hc("replicate", "deb", "--to", "node-a", ok=False)
    assert "peer node-b (cache) may not receive here" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert a.versions("deb") == ["v1", "v2"]
    p = ssh_as(ctx["b"], b, a, "hypercore", "repo", "receive", "deb", "--version", "v3", "--compress", "zstd",
               "--manifest-sha256", "ab" * 32)
    assert p.returncode == 1 and p.stderr.startswith("hypercore: refused over ssh: peer node-b (cache) may not")
    # No shell either (no command at all), and the key of a node is not accepted by itself.
    assert "refused over ssh: no command given" in ssh_as(ctx["a"], a, b).stderr
    p = ssh_as(ctx["b"], a, b, "hypercore", "repo", "_inventory")
    assert p.returncode == 255 and "Permission denied" in p.stderr
