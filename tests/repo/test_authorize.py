"""`hypercore repo authorize`: a peer's key added after the install, with the
forced command; bad keys refused, nothing changed; --revoke."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from hypercore.errors import UserError
from hypercore.repo import access
from hypercore.repo.authorize import authorize


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
