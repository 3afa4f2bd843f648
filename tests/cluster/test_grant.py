"""Making, revoking and sweeping join identities: which ceph commands run,
what tokens.json holds, and that the key is never logged."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
from pathlib import Path

import pytest

from hypercore.cluster import grant, token as tokmod
from hypercore.errors import UserError
from hypercore.run import CommandError

KEY = "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A=="
FSID = "6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
RECORDED = Path(__file__).parent / "recorded"
NOW = 1_800_000_000


class FakeCeph:
    """Answers the ceph CLI like a small cluster; records every argv."""

    def __init__(self, mon_dump="three-nodes.mon_dump.json"):
        self.calls: list[list[str]] = []
        self.entities: set[str] = set()
        self.mon_dump = (RECORDED / mon_dump).read_text()
        self.fail_create = False

    def __call__(self, argv, *, check=True, input=None, timeout=None):
        argv = list(argv)
        self.calls.append(argv)
        args = argv[1:]
        rc, out, err = 0, "", ""
        if args == ["fsid", "-f", "json"]:
            out = json.dumps({"fsid": FSID})
        elif args == ["mon", "dump", "-f", "json"]:
            out = self.mon_dump
        elif args[:2] == ["auth", "get-or-create"]:
            if self.fail_create:
                rc, out, err = 22, f'[{{"key": "{KEY}"}}]', "Error EINVAL: bad caps"
            else:
                self.entities.add(args[2])
                out = json.dumps([{"entity": args[2], "key": KEY, "caps": {"mon": args[4]}}])
        elif args[:2] == ["auth", "rm"]:
            rc = 0 if args[2] in self.entities else 2
            self.entities.discard(args[2])
        else:
            raise AssertionError(argv)
        if check and rc:
            raise CommandError(argv, rc, out, err)
        return subprocess.CompletedProcess(argv, rc, out, err)


def test_token_names_a_new_identity_with_the_join_caps(tmp_path):
    ceph = FakeCeph()
    text = grant.create(tmp_path, 3600, run=ceph, now=NOW)
    tok = tokmod.decode(text)
    assert tok.fsid == FSID and tok.key == KEY and tok.expires == NOW + 3600
    assert tok.mons == ["10.0.2.15", "10.0.2.16", "10.0.2.17"]     # default ports: addresses only
    assert tokmod.ENTITY_RE.fullmatch(tok.entity)
    create = [c for c in ceph.calls if c[1:3] == ["auth", "get-or-create"]]
    assert create == [["ceph", "auth", "get-or-create", tok.entity, "mon", tokmod.JOIN_CAPS["mon"], "-f", "json"]]
    reg = tmp_path / "cluster" / "tokens.json"
    assert stat.S_IMODE(reg.stat().st_mode) == 0o600
    assert json.loads(reg.read_text()) == {tok.entity: {"created": NOW, "expires": NOW + 3600}}
    assert KEY not in reg.read_text()
    assert all(KEY not in " ".join(c) for c in ceph.calls)


def test_two_tokens_are_two_identities(tmp_path):
    ceph = FakeCeph()
    a = tokmod.decode(grant.create(tmp_path, 3600, run=ceph, now=NOW))
    b = tokmod.decode(grant.create(tmp_path, 3600, run=ceph, now=NOW))
    assert a.entity != b.entity and len(grant.listing(tmp_path, NOW)) == 2


def test_non_default_mon_ports_are_kept():
    dump = {"mons": [{"name": "a", "public_addrs": {"addrvec": [
        {"type": "v2", "addr": "10.0.0.1:3301"}, {"type": "v1", "addr": "10.0.0.1:6790"}]}},
        {"name": "b", "public_addrs": {"addrvec": [{"type": "v2", "addr": "[2001:db8::2]:3300"},
                                                    {"type": "v1", "addr": "[2001:db8::2]:6789"}]}}]}
    assert grant.mon_addresses(dump) == ["10.0.0.1:6790", "[2001:db8::2]"]


def test_a_refused_create_shows_stderr_not_the_output(tmp_path):
    ceph = FakeCeph()
    ceph.fail_create = True
    with pytest.raises(CommandError) as e:
        grant.create(tmp_path, 3600, run=ceph, now=NOW)
    assert "bad caps" in str(e.value) and KEY not in str(e.value)


def test_revoke_removes_the_identity_and_its_record(tmp_path):
    ceph = FakeCeph()
    tok = tokmod.decode(grant.create(tmp_path, 3600, run=ceph, now=NOW))
    assert grant.revoke(tmp_path, tok.entity, run=ceph) == f"{tok.entity} revoked"
    assert ["ceph", "auth", "rm", tok.entity] in ceph.calls
    assert grant.listing(tmp_path, NOW) == []
    assert grant.revoke(tmp_path, tok.entity, run=ceph)        # already gone (ENOENT): still fine


@pytest.mark.parametrize("entity", ["client.admin", "client.bootstrap-osd", "osd.0", "client.join-"])
def test_revoke_refuses_anything_but_a_join_identity(tmp_path, entity):
    ceph = FakeCeph()
    with pytest.raises(UserError, match="is not a join identity"):
        grant.revoke(tmp_path, entity, run=ceph)
    assert ceph.calls == []


def test_sweep_removes_only_the_expired(tmp_path):
    ceph = FakeCeph()
    old = tokmod.decode(grant.create(tmp_path, 600, run=ceph, now=NOW - 3600))
    new = tokmod.decode(grant.create(tmp_path, 3600, run=ceph, now=NOW))
    assert grant.sweep(tmp_path, run=ceph, now=NOW) == [old.entity]
    assert ceph.entities == {new.entity}
    assert [e for e, _, _ in grant.listing(tmp_path, NOW)] == [new.entity]
    assert grant.sweep(tmp_path, run=ceph, now=NOW) == []
    assert grant.sweep(tmp_path, run=ceph, now=NOW + 3600) == [new.entity]


def test_sweep_without_tokens_runs_nothing(tmp_path):
    ceph = FakeCeph()
    assert grant.sweep(tmp_path, run=ceph, now=NOW) == []
    assert ceph.calls == [] and not (tmp_path / "cluster").exists()


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("1h", 3600), ("2d", 172800), ("900", 900)])
def test_ttl(text, seconds):
    assert grant.parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["1x", "", "1m", "8d", "-1h"])
def test_bad_ttl(text):
    with pytest.raises(UserError):
        grant.parse_ttl(text)


FAKE_CEPH = f"""#!/usr/bin/python3
import json, sys
a = sys.argv[1:]
if a[:1] == ["fsid"]:
    print(json.dumps({{"fsid": "{FSID}"}}))
elif a[:2] == ["mon", "dump"]:
    print(open("{RECORDED}/one-node.mon_dump.json").read())
elif a[:2] == ["auth", "get-or-create"]:
    print(json.dumps([{{"entity": a[2], "key": "{KEY}"}}]))
elif a[:2] == ["auth", "rm"]:
    pass
else:
    sys.exit(22)
"""


def test_the_real_command_line_never_logs_the_key(tmp_path, monkeypatch, capsys, caplog):
    """Through hypercore.run.run and the CLI, with a stand-in `ceph` program on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ceph").write_text(FAKE_CEPH)
    os.chmod(bindir / "ceph", 0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    from hypercore import cli
    caplog.set_level(logging.DEBUG, logger="hypercore.run")
    state = tmp_path / "state"
    assert cli.main(["cluster", "token", "--ttl", "30m", "--state-dir", str(state)]) == 0
    out, err = capsys.readouterr()
    tok = tokmod.decode(out.strip())
    assert tok.key == KEY and tok.mons == ["10.0.2.15"]
    assert out.strip().count("\n") == 0                          # one line: the token
    assert "ceph.join.token" in err and KEY not in err
    logged = [r.getMessage() for r in caplog.records]
    assert any("auth get-or-create" in m for m in logged)        # commands are logged ...
    assert not any(KEY in m for m in logged)                     # ... never the key
    assert KEY not in (state / "cluster" / "tokens.json").read_text()
    assert cli.main(["cluster", "token", "--revoke", tok.entity, "--state-dir", str(state)]) == 0
    assert cli.main(["cluster", "token", "--revoke", "client.admin", "--state-dir", str(state)]) == 1
    assert "is not a join identity" in capsys.readouterr().err
