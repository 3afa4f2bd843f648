"""ceph.join.token in the answer file: schema and validation."""

from __future__ import annotations

import copy
import time

from hypercore.cluster import token as tokmod
from hypercore_installer import answers

KEY = "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A=="
FSID = "6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
DOC = {"target": {"path": "/dev/vda"}, "hostname": "node2",
       "root": {"ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g a@b"]},
       "ceph": {"mode": "join", "osd_disks": ["/dev/vdb"]}}


def token(expires: int, fsid: str = FSID) -> str:
    return tokmod.encode(tokmod.Token(fsid=fsid, mons=["10.0.2.15"], entity="client.join-00aa11bb22cc",
                                      key=KEY, expires=expires))


def doc_with(tok: str, **ceph) -> dict:
    d = copy.deepcopy(DOC)
    d["ceph"].update({"join": {"token": tok}, **ceph})
    return d


def test_a_fresh_token_alone_is_enough():
    now = time.time()
    assert answers.check(doc_with(token(int(now) + 3600)), now=now) == []
    assert answers.check(doc_with(token(int(now) + 3600), fsid=FSID), now=now) == []


def test_the_old_way_still_works():
    d = copy.deepcopy(DOC)
    d["ceph"].update({"mon_hosts": ["10.0.2.15"], "key": KEY})
    assert answers.check(d, now=time.time()) == []


def test_neither_way_names_both_keys():
    problems = answers.check(copy.deepcopy(DOC))
    assert {p.path for p in problems} == {"ceph.mon_hosts", "ceph.key"}
    assert all("join.token" in p.message for p in problems)


def test_expired_at_install_time_but_not_on_the_installed_node():
    now = 1_800_000_000
    d = doc_with(token(now - 3600))
    [p] = answers.check(d, now=now)
    assert p.path == "ceph.join.token" and "expired at" in p.message and "5 minutes" in p.message
    assert answers.check(d) == []         # hypercore-install status on a joined node months later
    assert answers.check(doc_with(token(now - 200)), now=now) == []      # within the clock skew


def test_malformed_and_wrong_cluster():
    [p] = answers.check(doc_with("x" * 60), now=time.time())
    assert p.path == "ceph.join.token" and p.message.startswith("the join token is malformed")
    [p] = answers.check(doc_with(token(int(time.time()) + 60), fsid="00000000-0000-4000-8000-000000000000"))
    assert p.message == f"the join token is for cluster {FSID}, not 00000000-0000-4000-8000-000000000000 (ceph.fsid)"


def test_the_token_is_never_shown_in_a_problem():
    bad = "!" * 50                                   # fails the schema's pattern
    problems = answers.check(doc_with(bad))
    assert problems and all(bad not in str(p) for p in problems)
    tok = token(1)
    assert all(tok not in str(p) and KEY not in str(p) for p in answers.check(doc_with(tok), now=time.time()))


def test_both_ways_at_once_is_one_problem():
    now = time.time()
    d = doc_with(token(int(now) + 3600), mon_hosts=["10.0.2.15"], key=KEY)
    [p] = answers.check(d, now=now)
    assert p.path == "ceph" and p.message == "give either `join.token` or `mon_hosts` with `key`, not both"
