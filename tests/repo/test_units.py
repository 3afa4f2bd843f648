"""The repository's pure parts: names, parent choice, manifests, config, ssh argv, errors."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from hypercore.errors import UserError
from hypercore.repo import btrfs, config, layout, manifest, store, transfer, transport
from hypercore.repo.transfer import Step, plan


def test_version_names():
    assert layout.version("v3") == "v3" and layout.version("7") == "v7"
    for bad in ("v0", "x1", "v-1", "v1/..", "", "V2"):
        with pytest.raises(UserError):
            layout.version(bad)
    assert layout.next_version([]) == "v1"
    assert layout.next_version(["v1", "v10", "v9"]) == "v11"
    assert layout.sort_versions(["v10", "v2", "v1"]) == ["v1", "v2", "v10"]
    assert layout.split_ref("deb-12@v2") == ("deb-12", "v2")
    assert layout.split_ref("deb-12") == ("deb-12", None)
    for bad in ("../etc", "-rf", "a b", "deb;rm", "Deb"):
        with pytest.raises(UserError):
            layout.split_ref(bad)


def test_repo_dir_resolution(monkeypatch):
    monkeypatch.delenv(layout.ENV, raising=False)
    assert layout.resolve(None).root == Path("/var/lib/hypercore/images/repo")
    monkeypatch.setenv(layout.ENV, "/srv/repo")
    assert layout.resolve(None).root == Path("/srv/repo")
    assert layout.resolve("/x").root == Path("/x")


SHA = {f"v{i}": f"sha{i}" for i in range(1, 6)}


def ours(*vs):
    return {v: SHA[v] for v in vs}


def test_plan_full_when_nothing_in_common():
    assert plan("d", ours("v1", "v2"), {}) == [Step("v1", None), Step("v2", "v1")]


def test_plan_incremental_from_newest_common():
    assert plan("d", ours("v1", "v2", "v3"), ours("v1", "v2")) == [Step("v3", "v2")]
    assert plan("d", ours("v1", "v2", "v3", "v4"), ours("v1", "v3")) == [Step("v2", "v1"), Step("v4", "v3")]
    # the receiver pruned the old ones: send against the newest both hold, even a newer one
    assert plan("d", ours("v2", "v3"), ours("v3")) == [Step("v2", "v3")]
    assert plan("d", ours("v1", "v2"), ours("v1", "v2")) == []


def test_plan_only_and_full():
    assert plan("d", ours("v1", "v2", "v3"), ours("v1"), only="v3") == [Step("v3", "v1")]
    assert plan("d", ours("v1", "v2"), ours("v1"), full=True) == [Step("v2", None)]


def test_plan_name_clash():
    with pytest.raises(UserError, match=r"name clash: the other side's d@v1"):
        plan("d", ours("v1", "v2"), {"v1": "other"})


def test_manifest_and_problems(tmp_path):
    (tmp_path / "disk.raw").write_bytes(b"x" * 5000)
    m = manifest.build("deb", "v1", "disk.raw", tmp_path, "host:/src", "2026-01-01 00:00:00")
    assert m["files"]["disk.raw"]["size"] == 5000 and m["size"] == 5000
    digest = manifest.write(tmp_path, m)
    assert digest == manifest.digest(tmp_path) and len(digest) == 64
    assert manifest.load(tmp_path)["image"] == "disk.raw"
    assert manifest.problems(tmp_path) == []
    (tmp_path / "disk.raw").write_bytes(b"y" * 5000)
    assert manifest.problems(tmp_path) == ["disk.raw: sha256 differs from the manifest"]
    (tmp_path / "disk.raw").write_bytes(b"y")
    assert manifest.problems(tmp_path) == ["disk.raw: size 1, manifest says 5000"]
    (tmp_path / "extra").write_text("?")
    assert "extra: not in the manifest" in manifest.problems(tmp_path)
    (tmp_path / "manifest.json").unlink()
    assert manifest.problems(tmp_path)[0].startswith("manifest.json is missing")


def test_update_in_place_writes_only_changed_blocks(tmp_path):
    mb = store.BLOCK
    src, dst = tmp_path / "new", tmp_path / "old"
    dst.write_bytes(b"a" * (4 * mb))
    src.write_bytes(b"a" * mb + b"b" * mb + b"a" * (2 * mb) + b"\0" * mb)
    assert store.update_in_place(src, dst) == mb          # the trailing zero MiB stays a hole
    assert dst.read_bytes() == src.read_bytes()
    fresh = tmp_path / "fresh"
    assert store.update_in_place(src, fresh) == 4 * mb
    assert fresh.read_bytes() == src.read_bytes()


def test_refused_file_names(tmp_path):
    for bad in ("manifest.json", ".hidden"):
        with pytest.raises(UserError):
            store.check_file_name(tmp_path / bad)


GOOD = {"role": "cache", "peers": [{"name": "srv-1", "address": "root@10.0.0.1", "port": 2222,
                                    "identity_file": "/etc/hypercore/id_ed25519",
                                    "ssh_options": ["UserKnownHostsFile=/etc/hypercore/known_hosts"]}]}


def test_config_good(tmp_path, monkeypatch):
    p = tmp_path / "repo.yaml"
    p.write_text(json.dumps(GOOD))
    monkeypatch.setenv(config.ENV, str(p))
    cfg = config.load()
    assert cfg.role == "cache"
    peer = cfg.peer("srv-1")
    assert (peer.port, peer.role, peer.ssh_options) == (2222, "image-server", ("UserKnownHostsFile=/etc/hypercore/known_hosts",))
    with pytest.raises(UserError, match=r"unknown peer 'x' \(known: srv-1\)"):
        cfg.peer("x")
    assert config.load(str(tmp_path / "missing.yaml")).peers == ()


def test_config_errors_name_every_field():
    bad = {"role": "master", "colour": 1, "peers": [
        {"name": "a", "address": "-oProxyCommand=x@h"},
        {"name": "a", "address": "root@h", "port": 70000, "ssh_options": ["-F /tmp/x"]},
        {"address": "root@h"}]}
    with pytest.raises(UserError) as e:
        config.from_dict(bad, "repo.yaml")
    msg = e.value.message
    for where in ("(top level): Additional properties", "role: 'master'", "peers.0.address",
                  "peers.1.port", "peers.1.ssh_options.0", "peers.2: 'name' is a required property",
                  "peers.1.name: 'a' is used twice"):
        assert where in msg, (where, msg)
    assert "repo.schema.json" in e.value.hint


def test_ssh_argv_and_remote_command():
    peer = config.from_dict(GOOD, "t").peers[0]
    peer = config.Peer(**{**peer.__dict__, "repo_dir": "/srv/repo"})
    cmd = transport.remote_command(peer, "receive", "deb", "--version", "v2")
    assert shlex.split(cmd) == ["hypercore", "repo", "--repo-dir", "/srv/repo", "receive", "deb", "--version", "v2"]
    argv = transport.ssh_argv(peer, cmd)
    assert argv[0] == "ssh" and argv[-3:] == ["--", "root@10.0.0.1", cmd]
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == "/etc/hypercore/id_ed25519"
    assert "BatchMode=yes" in argv and "UserKnownHostsFile=/etc/hypercore/known_hosts" in argv


def test_compressors():
    assert transport.compress_argv("none") is None and transport.decompress_argv("none") is None
    assert transport.compress_argv("zstd")[0] == "zstd" and "-d" in transport.decompress_argv("lz4")


def test_remote_errors_are_one_line_and_a_hint():
    peer = config.from_dict(GOOD, "t").peers[0]
    e = transport.remote_error(peer, 255, "ssh: connect to host 10.0.0.1 port 2222: Connection refused\n")
    assert e.message == "peer srv-1 (root@10.0.0.1 port 2222) is unreachable: ssh: connect to host 10.0.0.1 port 2222: Connection refused"
    e = transport.remote_error(peer, 1, "hypercore: the repository /r is not on a BTRFS filesystem (it is on ext4)\n  hint: put it on BTRFS\n")
    assert e.message == "peer srv-1: the repository /r is not on a BTRFS filesystem (it is on ext4)"
    assert e.hint == "put it on BTRFS"
    e = transport.remote_error(peer, 127, "bash: hypercore: command not found\n")
    assert "has no `hypercore` command" in e.message


def test_missing_tool_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError) as e:
        transfer.remote_inventory(config.from_dict(GOOD, "t").peers[0])
    assert e.value.message == "required tool 'ssh' is not installed"
    assert e.value.hint == "install it: apt-get install openssh-client"


def test_not_btrfs(tmp_path):
    from hypercore.repo import btrfs
    if btrfs.fs_type(tmp_path) == "btrfs":
        pytest.skip("tmp is on BTRFS here")
    with pytest.raises(UserError, match="is not on a BTRFS filesystem"):
        store.add(layout.Repo(tmp_path / "repo"), "deb", Path(__file__))
    assert not (tmp_path / "repo").exists()


def test_btrfs_receive_is_confined_to_the_staging_directory():
    """A peer's stream names paths; with --chroot, btrfs receive cannot write outside staging
    (the replication tests run it for real)."""
    argv = btrfs.receive_argv(Path("/repo/.staging/deb/v2.recv"))
    assert argv[:3] == ["btrfs", "-q", "receive"] and "--chroot" in argv
    assert argv[-1] == "/repo/.staging/deb/v2.recv"
