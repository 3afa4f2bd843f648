"""Replication between two real appliances-in-a-namespace: BTRFS on loop devices, sshd, veth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hypercore.run import run
from tests.repo.nodes import write_image

pytestmark = pytest.mark.integration

MiB = 1 << 20
SIZE = 64 * MiB


def sent(p: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def staging(node) -> list[str]:
    d = node.repo / ".incoming"
    return sorted(os.listdir(d)) if d.is_dir() else []


def test_full_then_incremental_then_pull(pair):
    a, b = pair.a, pair.b
    img = pair.top / "disk.raw"
    write_image(img, SIZE, 1, [(0, 16 * MiB)])
    a.hc("add", "deb", str(img))
    first = sent(a.hc("replicate", "deb", "--to", "node-b", "--json"))
    assert [(s["version"], s["parent"]) for s in first] == [("v1", None)]
    assert first[0]["bytes"] > 15 * MiB          # random data: a full send carries all of it

    write_image(img, SIZE, 2, [(40 * MiB, 2 * MiB)])   # v2: 2 MiB of a 64 MiB image change
    a.hc("add", "deb", str(img))
    second = sent(a.hc("replicate", "deb", "--to", "node-b", "--json"))
    assert [(s["version"], s["parent"]) for s in second] == [("v2", "v1")]
    assert second[0]["bytes"] < 3 * MiB          # far fewer bytes than v2's 64 MiB (18 MiB of data)
    assert b.versions("deb") == ["v1", "v2"]
    assert "the manifest" in b.hc("verify", "deb").stdout
    assert a.hc("replicate", "deb", "--to", "node-b").stdout.strip().endswith("is up to date)")

    # The cache direction: b pulls v3 from a, as an increment of v2, over lz4.
    write_image(img, SIZE, 3, [(8 * MiB, 1 * MiB)])
    a.hc("add", "deb", str(img))
    pulled = sent(b.hc("pull", "deb", "--from", "node-a", "--compress", "lz4", "--json"))
    assert [(s["version"], s["parent"]) for s in pulled] == [("v3", "v2")]
    assert pulled[0]["bytes"] < 2 * MiB
    assert b.versions("deb") == ["v1", "v2", "v3"]
    b.hc("verify", "deb@v3")
    peers = b.hc("peers").stdout
    assert "node-a" in peers and "reachable" in peers and "deb: v1 v2 v3" in peers
    assert staging(a) == [] and staging(b) == []


def test_killed_transfer_leaves_nothing_and_resumes(pair):
    a, b = pair.a, pair.b
    img = pair.top / "disk.raw"
    write_image(img, SIZE, 1, [(0, 4 * MiB)])
    a.hc("add", "deb", str(img))
    a.hc("replicate", "deb", "--to", "node-b")
    write_image(img, SIZE, 2, [(16 * MiB, 32 * MiB)])
    a.hc("add", "deb", str(img))

    # 32 MiB at 8 MiB/s: about 4 s on the wire; kill it when the peer is part-way.
    proc = a.start("replicate", "deb", "--to", "node-b", "--bwlimit", "8192")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            parts = list((b.repo / ".incoming").glob("deb.v2.*/snapshot/disk.raw"))
            if parts and parts[0].stat().st_blocks * 512 > 8 * MiB:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the transfer never reached the peer's staging")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert b.versions("deb") == ["v1"]           # no half version, v1 kept
    assert not (b.repo / "deb" / "v2").exists()

    again = sent(a.hc("replicate", "deb", "--to", "node-b", "--json"))
    assert [(s["version"], s["parent"]) for s in again] == [("v2", "v1")]
    assert b.versions("deb") == ["v1", "v2"]
    b.hc("verify", "deb@v2")
    assert staging(b) == []


@pytest.mark.parametrize("compress", ["none", "zstd"])
def test_corrupt_stream_is_rejected(pair, compress):
    a, b = pair.a, pair.b
    img = pair.top / "disk.raw"
    write_image(img, SIZE, 1, [(0, 4 * MiB)])
    a.hc("add", "deb", str(img))
    a.hc("replicate", "deb", "--to", "node-b")
    write_image(img, SIZE, 2, [(8 * MiB, 4 * MiB)])
    a.hc("add", "deb", str(img))

    stream = pair.top / "v2.stream"
    with open(stream, "wb") as out:
        subprocess.run(a.argv("_send", "deb", "--version", "v2", "--parent", "v1", "--compress", compress),
                       env={**os.environ, **a.env()}, stdout=out, check=True)
    data = bytearray(stream.read_bytes())
    for off in range(len(data) // 2, len(data) // 2 + 64):
        data[off] ^= 0xFF
    stream.write_bytes(bytes(data))

    p = a.hc("replicate", "deb@v2", "--to", "node-b", "--compress", compress, "--stream-file", str(stream), ok=False)
    assert "peer node-b:" in p.stderr and "hint:" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 2, p.stderr
    assert b.versions("deb") == ["v1"]
    b.hc("verify", "deb@v1")
    assert staging(b) == []
    a.hc("replicate", "deb", "--to", "node-b")   # the real stream then goes through
    assert b.versions("deb") == ["v1", "v2"]


def test_prune_keeps_versions_in_use(pair):
    a = pair.a
    img = pair.top / "disk.raw"
    for seed in range(1, 5):
        write_image(img, 8 * MiB, seed, [(0, MiB)])
        a.hc("add", "deb", str(img))
    published = a.hc("publish", "deb@v1", "--as", "deb-golden").stdout
    assert "origin repo:deb@v1" in published
    assert (a.repo / "deb/v1/holds/deb-golden").read_text().strip() == "repo:deb@v1"
    vm_disk = a.repo / "deb/v2/snapshot/disk.raw"
    subprocess.run(["ip", "netns", "exec", a.ns, sys.executable, "-m", "hypercore", "vm", "create",
                    "t1", "64", "1", str(vm_disk)], env={**os.environ, **a.env()}, check=True,
                   capture_output=True)

    out = a.hc("prune", "deb", "--keep", "1").stdout
    assert "kept deb@v1: in use by image deb-golden" in out
    assert "kept deb@v2: in use by VM t1" in out
    assert "pruned deb@v3" in out
    assert a.versions("deb") == ["v1", "v2", "v4"]


def test_verify_catches_a_changed_file(pair):
    a = pair.a
    img = pair.top / "disk.raw"
    write_image(img, 8 * MiB, 1, [(0, MiB)])
    a.hc("add", "deb", str(img))
    sub = a.repo / "deb/v1/snapshot"
    run(["btrfs", "property", "set", "-ts", str(sub), "ro", "false"])   # read-only snapshots cannot change
    with open(sub / "disk.raw", "r+b") as f:
        f.seek(100)
        f.write(b"tampered")
    p = a.hc("verify", "deb@v1", ok=False)
    assert "deb@v1 fails verification: disk.raw: sha256 differs from the manifest" in p.stderr
    assert "hint:" in p.stderr


def test_bad_peers_and_name_clash(pair):
    a, b = pair.a, pair.b
    img = pair.top / "disk.raw"
    write_image(img, 8 * MiB, 1, [(0, MiB)])
    a.hc("add", "deb", str(img))

    p = a.hc("replicate", "deb", "--to", "nowhere", ok=False)
    assert p.stderr.startswith("hypercore: unknown peer 'nowhere' (known: node-b)")

    plain = b.dir / "plain"          # not on BTRFS
    pair.write_config(a, [pair.peer_entry(b), pair.peer_entry(b, name="closed", port=1),
                          pair.peer_entry(b, name="nobtrfs", repo_dir=str(plain))])
    p = a.hc("replicate", "deb", "--to", "closed", ok=False)
    assert "peer closed (root@10.231.77.2 port 1) is unreachable" in p.stderr
    p = a.hc("replicate", "deb", "--to", "nobtrfs", ok=False)
    assert "peer nobtrfs: the repository" in p.stderr and "is not on a BTRFS filesystem" in p.stderr
    assert not plain.exists()
    p = a.hc("peers", ok=False)
    assert "node-b" in p.stdout and "UNREACHABLE" in p.stdout

    # b has its own, different deb@v1: neither side loses anything.
    write_image(pair.top / "other.raw", 8 * MiB, 9, [(0, MiB)])
    b.hc("add", "deb", str(pair.top / "other.raw"))
    p = a.hc("replicate", "deb", "--to", "node-b", ok=False)
    assert "name clash" in p.stderr
    b.hc("verify", "deb@v1")
    assert json.loads(b.hc("list", "deb", "--json").stdout)[0]["source"].endswith("other.raw")
