"""`hypercore repo authorize`: a peer's key added after the install, with the
forced command; bad keys refused, nothing changed; --revoke."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hypercore.errors import UserError
from hypercore.repo import access
from hypercore.repo import authorize as authorize_mod
from hypercore.repo.authorize import authorize

TOP = Path(__file__).resolve().parents[2]


@pytest.fixture
def keys(tmp_path):
    out = []
    for name in ("a", "b"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"hypercore-repo@{name}",
                        "-f", str(tmp_path / name)], check=True)
        out.append((tmp_path / f"{name}.pub").read_text().strip())
    return out


def test_add_once_then_revoke(tmp_path, keys):
    path, dropin = str(tmp_path / "etc/repo/authorized_keys"), str(tmp_path / "sshd.d/10.conf")
    assert "may now replicate" in authorize(keys[0], True, path, dropin)
    assert "already authorized" in authorize(keys[0], True, path, dropin)
    authorize(keys[1], True, path, dropin)
    text = open(path).read()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [access.authorized_line(keys[0]), access.authorized_line(keys[1])]
    assert path in open(dropin).read()
    # sshd itself accepts the result (the forced command and restrictions parse).
    for key in keys:
        fp = subprocess.run(["ssh-keygen", "-l", "-f", path], capture_output=True, text=True, check=True).stdout
        assert key.split()[2] in fp
    assert "removed" in authorize(keys[0], False, path, dropin)
    assert access.key_lines(open(path).read()) == [tuple(keys[1].split()[:2])]
    assert "was not authorized" in authorize(keys[0], False, path, dropin)


@pytest.mark.parametrize("bad", [
    "", "not a key", 'command="/bin/sh" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    "ssh-ed25519 !!!notbase64", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "ssh-ed25519 AAAA\nssh-ed25519 AAAA",
])
def test_a_bad_key_is_refused_and_changes_nothing(tmp_path, keys, bad):
    path, dropin = str(tmp_path / "authorized_keys"), str(tmp_path / "10.conf")
    authorize(keys[0], True, path, dropin)
    before = open(path).read()
    with pytest.raises(UserError) as e:
        authorize(bad, True, path, dropin)
    assert e.value.hint and "repo peers" in e.value.hint
    assert open(path).read() == before


ETC = (access.AUTHORIZED_KEYS, access.SSHD_DROPIN, "/etc/hypercore/repo", "/etc/ssh/sshd_config.d")


def _etc_state():
    out = {}
    for path in ETC:
        try:
            st = os.stat(path)
            out[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            out[path] = None
    return out


def _cli(tmp_path, *args):
    env = {**os.environ, "HYPERCORE_REPO_CONFIG": str(tmp_path / "repo.yaml"),
           "HYPERCORE_REPO_DIR": str(tmp_path / "images"), "HYPERCORE_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "hypercore", "repo", "authorize", *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=TOP)


def test_authorize_writes_beside_the_configured_repo_yaml_and_nothing_under_etc(tmp_path, keys):
    (tmp_path / "repo.yaml").write_text(yaml.safe_dump(
        {"role": "image-server", "peers": [{"name": "node2", "address": "root@10.0.0.2", "role": "cache"},
                                           {"name": "node3", "address": "root@10.0.0.3"}]}))
    before = _etc_state()
    p = _cli(tmp_path, keys[0], "--peer", "node2")
    assert p.returncode == 0, p.stderr
    path, dropin = tmp_path / "repo/authorized_keys", tmp_path / "repo/sshd_config.d/10-hypercore-repo.conf"
    assert "is peer node2's (cache): it may now only pull from this node" in p.stdout and str(path) in p.stdout
    assert [ln for ln in path.read_text().splitlines() if not ln.startswith("#")] == \
        [access.authorized_line(keys[0], "node2")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dropin.read_text() == access.sshd_dropin(str(path))
    # The same key for another peer: rebound, not added twice; a key bound to no peer; --revoke.
    assert "replicate to and pull from" in _cli(tmp_path, keys[0], "--peer", "node3").stdout
    assert access.key_lines(path.read_text()) == [tuple(keys[0].split()[:2])]
    assert _cli(tmp_path, keys[1]).returncode == 0
    assert f"{access.authorized_line(keys[0], 'node3')}\n{access.authorized_line(keys[1])}\n" in path.read_text()
    # A peer repo.yaml does not list: refused with one line, nothing changed.
    text = path.read_text()
    p = _cli(tmp_path, keys[1], "--peer", "node9")
    assert p.returncode != 0 and "unknown peer 'node9' (known: node2, node3)" in p.stderr
    assert "Traceback" not in p.stderr and path.read_text() == text
    assert _cli(tmp_path, "--revoke", keys[0]).returncode == 0
    assert access.key_lines(path.read_text()) == [tuple(keys[1].split()[:2])]
    assert _etc_state() == before


def test_the_system_repo_yaml_keeps_the_system_locations():
    assert authorize_mod.locations("/etc/hypercore/repo.yaml") == (access.AUTHORIZED_KEYS, access.SSHD_DROPIN)
    assert authorize_mod.locations("/srv/x/repo.yaml") == ("/srv/x/repo/authorized_keys",
                                                       "/srv/x/repo/sshd_config.d/10-hypercore-repo.conf")
