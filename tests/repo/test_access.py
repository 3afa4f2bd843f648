"""Replication access: the forced command's checks, the files the installer's
`repo` step renders, and the step itself on a temporary root (real ssh-keygen)."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess

import pytest
import yaml

from hypercore.errors import UserError
from hypercore.repo import access, config, serve, transport
from hypercore_installer.firstboot.context import Context
from hypercore_installer.firstboot.host import Host
from hypercore_installer.firstboot.journal import Journal
from hypercore_installer.firstboot.paths import Paths
from hypercore_installer.firstboot.steps_repo import setup_repo

ROOT = "/var/lib/hypercore/images/repo"
SHA = "ab" * 32
PEER = config.Peer("srv", "root@10.0.0.1", repo_dir=ROOT)


def test_the_commands_a_peer_sends_are_allowed_and_rebuilt():
    for verb, args in (("receive", ["deb", "--version", "v2", "--compress", "zstd", "--manifest-sha256", SHA,
                                    "--parent", "v1"]),
                       ("_send", ["deb", "--version", "v2", "--compress", "lz4"]),
                       ("_inventory", ["deb"]), ("_inventory", [])):
        sent = transport.remote_command(PEER, verb, *args)
        argv = serve.allowed_argv(sent, ROOT)
        assert argv[:4] == ["repo", "--repo-dir", ROOT, verb]
        assert sorted(argv[4:]) == sorted(args)
    # without --repo-dir, this node's own repository
    assert serve.allowed_argv("hypercore repo _inventory", ROOT) == ["repo", "--repo-dir", ROOT, "_inventory"]


@pytest.mark.parametrize("command", [
    None, "", "id", "rm -rf /", "sh -c id", "hypercore vm list", "hypercore repo",
    "hypercore repo add deb /etc/shadow", "hypercore repo prune deb --keep 1",
    "hypercore repo serve-ssh",
    "hypercore repo _inventory deb; touch /tmp/pwned",
    "hypercore repo _inventory deb && id",
    "hypercore repo _inventory $(id)",
    "hypercore repo _inventory 'deb",
    "hypercore repo _inventory a b",
    "hypercore repo --repo-dir /tmp/other _inventory",
    "hypercore repo --config /tmp/evil.yaml _inventory",
    "hypercore repo _send ../../etc --version v1 --compress zstd",
    "hypercore repo _send deb --version v1",
    "hypercore repo _send deb --version v1 --compress gzip",
    "hypercore repo _send deb --version v1;id --compress zstd",
    "hypercore repo _send deb --version v1 --version v2 --compress zstd",
    "hypercore repo _send deb --version v1 --compress zstd --stream-file /etc/shadow",
    "hypercore repo receive deb --version v1 --compress zstd --manifest-sha256 nothex",
    "hypercore repo receive deb --version v1 --compress zstd",
])
def test_anything_else_is_refused(command):
    with pytest.raises(UserError) as e:
        serve.allowed_argv(command, ROOT)
    assert e.value.message.startswith("refused over ssh: ") and "\n" not in e.value.message and e.value.hint


CACHE_AND_SERVER = config.Config("/etc/hypercore/repo.yaml", peers=(
    config.Peer("node2", "root@10.0.0.2", role="cache"), config.Peer("node3", "root@10.0.0.3")))
RECEIVE = f"hypercore repo receive deb --version v2 --compress zstd --manifest-sha256 {SHA}"


def test_a_cache_peers_key_only_pulls():
    verbs, who = serve.peer_access(CACHE_AND_SERVER, "node2")
    assert who == "peer node2 (cache)"
    for command in ("hypercore repo _inventory deb", "hypercore repo _send deb --version v1 --compress zstd"):
        assert serve.allowed_argv(command, ROOT, verbs, who)[3] in ("_inventory", "_send")
    with pytest.raises(UserError) as e:
        serve.allowed_argv(RECEIVE, ROOT, verbs, who)
    assert e.value.message == ("refused over ssh: peer node2 (cache) may not receive here "
                               "(it may: _inventory, _send)") and "cache only pulls" in e.value.hint
    # An image server's key, and a key bound to no peer: every replication verb.
    for peer in ("node3", None):
        verbs, _ = serve.peer_access(CACHE_AND_SERVER, peer)
        assert serve.allowed_argv(RECEIVE, ROOT, verbs)[3] == "receive"
    # A peer that repo.yaml no longer lists: nothing at all.
    with pytest.raises(UserError) as e:
        serve.peer_access(CACHE_AND_SERVER, "node9")
    assert "belongs to peer node9, which /etc/hypercore/repo.yaml does not list" in e.value.message


def test_a_peers_own_key_is_bound_to_it_in_authorized_keys():
    k1, k2 = "ssh-ed25519 AAAAC3Nza one@x", "ssh-ed25519 AAAAC3Nzb two@y"
    section = {"peers": [{"name": "node2", "address": "root@10.0.0.2", "role": "cache", "key": k1},
                         {"name": "node3", "address": "root@10.0.0.3"}], "authorized_keys": [k2, k1]}
    assert "key" not in access.repo_config(section)["peers"][0]          # not a repo.yaml field
    lines = [ln for ln in access.authorized_keys(access.authorized_entries(section)).splitlines()
             if not ln.startswith("#")]
    assert lines == [access.authorized_line(k1, "node2"), access.authorized_line(k2)]   # k1 once, bound
    assert lines[0].startswith('command="hypercore repo serve-ssh --peer node2",restrict,')


def test_rendered_files():
    line = access.authorized_line("ssh-ed25519 AAAAC3Nza peer@x\n")
    assert line.startswith('command="hypercore repo serve-ssh",restrict,no-pty,no-port-forwarding,')
    assert line.endswith(" ssh-ed25519 AAAAC3Nza peer@x")
    cfg = access.repo_config({"role": "cache", "peers": [{"name": "srv", "address": "root@10.0.0.1"}]},
                             "/k/id", "/k/known")
    assert cfg == {"role": "cache", "peers": [{"name": "srv", "address": "root@10.0.0.1", "port": 22,
                                               "role": "image-server", "identity_file": "/k/id",
                                               "ssh_options": ["StrictHostKeyChecking=accept-new",
                                                               "UserKnownHostsFile=/k/known"]}]}
    loaded = config.from_dict(yaml.safe_load(access.repo_yaml(cfg)), "t")     # the repository's own schema
    assert loaded.peer("srv").identity_file == "/k/id"
    assert access.sshd_dropin("/x/ak").strip().endswith("AuthorizedKeysFile .ssh/authorized_keys "
                                                        ".ssh/authorized_keys2 /x/ak")


def make_ctx(root, section, host_name="node1"):
    paths = Paths(str(root))
    os.makedirs(paths.state_dir, exist_ok=True)
    answers = {"hostname": host_name, **({"repo": section} if section is not None else {})}
    return Context(host=Host(out=io.StringIO()), paths=paths, answers=answers, record=None,
                   journal=Journal(paths.state_dir), facts={"host": host_name}, out=io.StringIO())


class NoSystemctl(Host):
    def run(self, argv, **kw):
        if argv[0] == "systemctl":
            return subprocess.CompletedProcess(argv, 0, "", "")
        return super().run(argv, **kw)


def test_the_firstboot_step_writes_the_key_config_and_forced_keys(tmp_path):
    peer_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g repo@node2"
    section = {"role": "image-server", "peers": [{"name": "node2", "address": "root@192.168.1.22", "port": 2222,
                                                  "role": "cache"}],
               "authorized_keys": [peer_key]}
    ctx = make_ctx(tmp_path, section)
    ctx.host = NoSystemctl(out=io.StringIO())
    setup_repo(ctx)
    p = ctx.paths
    assert stat.S_IMODE(os.stat(p.repo_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(p.repo_key)).st_mode) == 0o700
    public = open(p.repo_key + ".pub").read().strip()
    assert public.startswith("ssh-ed25519 ") and public == ctx.facts["repo_key"]
    assert json.load(open(os.path.join(p.state_dir, "facts.json")))["repo_key"] == public
    assert "this node's replication key: ssh-ed25519" in ctx.out.getvalue()
    cfg = config.load(p.repo_config)
    assert (cfg.role, cfg.peer("node2").port, cfg.peer("node2").identity_file) == ("image-server", 2222, p.repo_key)
    keys = [ln for ln in open(p.repo_authorized_keys).read().splitlines() if not ln.startswith("#")]
    assert keys == [access.authorized_line(peer_key)]
    assert stat.S_IMODE(os.stat(p.repo_authorized_keys).st_mode) == 0o600
    assert p.repo_authorized_keys in open(p.sshd_dropin).read()
    # A rerun keeps the key.
    setup_repo(ctx)
    assert open(p.repo_key + ".pub").read().strip() == public


def test_no_repo_section_writes_nothing(tmp_path):
    ctx = make_ctx(tmp_path, None)
    setup_repo(ctx)
    assert not os.path.exists(ctx.paths.repo_config) and not os.path.exists(ctx.paths.repo_key)
    assert "not set up" in ctx.out.getvalue()
