"""End to end, on the one-node appliance: `hypercore cluster status` and join
tokens against the real Ceph (the identity's caps are parsed and enforced by
the real monitors). A second node joining: test_scaleout.py."""

from __future__ import annotations

import json

import pytest

from hypercore.cluster.token import decode

pytestmark = pytest.mark.boot


def test_cluster_status_shows_the_node(appliance):
    node = appliance.node
    out = node.succeed("hypercore cluster status")
    for text in ("node1", "HEALTH_OK", "vm-pool"):
        assert text in out, out
    doc = json.loads(node.succeed("hypercore cluster status --json"))
    assert doc, doc


def test_join_token_may_only_fetch_the_admin_key(appliance):
    node = appliance.node
    text = node.succeed("hypercore cluster token --ttl 10m 2>/dev/null").strip()
    tok = decode(text)
    assert tok.entity.startswith("client.join-")
    assert tok.fsid == node.succeed("ceph fsid").strip()
    assert tok.entity in node.succeed("hypercore cluster token --list")
    # The monitors accept its caps: it may read the cluster id and fetch the
    # admin key (what a joining node needs to become a member), nothing else.
    node.succeed(f"umask 077 && ceph-authtool --create-keyring /root/join.keyring "
                 f"--name {tok.entity} --add-key {tok.key} >/dev/null")
    as_join = f"ceph --name {tok.entity} --keyring /root/join.keyring --connect-timeout 30"
    assert node.succeed(f"{as_join} fsid 2>/dev/null").strip() == tok.fsid
    assert "client.admin" in node.succeed(f"{as_join} auth get client.admin 2>/dev/null")
    for forbidden in ("auth get mon.", "auth get client.bootstrap-osd", "osd pool create stolen 8", "auth ls",
                      "osd tree"):
        rc, out = node.execute(f"{as_join} {forbidden}")
        assert rc != 0, f"{forbidden!r} was allowed: {out}"
    # The key is printed once, never logged.
    assert tok.key not in node.succeed("journalctl -b --no-pager -o cat")
    node.succeed(f"hypercore cluster token --revoke {tok.entity}")
    assert tok.entity not in node.succeed("ceph auth ls 2>/dev/null")
    node.succeed("rm -f /root/join.keyring")
