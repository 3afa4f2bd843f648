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
    assert p.path == "ceph" and p.message == "give either `join` (a `token` or a `request`) or `mon_hosts` with `key`, not both"


def test_a_join_request_validates_and_a_token_with_it_is_refused():
    from hypercore_installer import answers as answers_mod
    from tests.firstboot.conftest import ANSWERS_NEW
    ok = {**ANSWERS_NEW, "ceph": {"mode": "join", "join": {"request": "http://192.168.50.1:8067"},
                                  "osd_disks": ["/dev/vdb"]}}
    assert answers_mod.check(ok) == []
    both = {**ok, "ceph": {**ok["ceph"], "join": {"request": "http://192.168.50.1:8067", "token": "x" * 60}}}
    problems = answers_mod.check(both)
    assert problems[0].path == "ceph.join" and "exactly one of" in problems[0].message, problems
    bad = {**ok, "ceph": {**ok["ceph"], "join": {"request": "ftp://node1/"}}}
    assert [p.path for p in answers_mod.check(bad)] == ["ceph.join.request"]


def test_answers_over_plain_http_may_hold_no_secret():
    from hypercore_installer import answers as answers_mod
    from tests.firstboot.conftest import ANSWERS_NEW, JOIN_KEY
    doc = {**ANSWERS_NEW, "root": {"ssh_keys": ANSWERS_NEW["root"]["ssh_keys"], "password_hash": "$6$x$y"},
           "ceph": {"mode": "join", "mon_hosts": ["10.0.2.10"], "key": JOIN_KEY, "osd_disks": ["/dev/vdb"]}}
    assert answers_mod.secret_fields(doc) == ["root.password_hash", "ceph.key"]
    problems = answers_mod.check_served(doc)
    assert [p.path for p in problems] == ["root.password_hash", "ceph.key"]
    assert "plain HTTP" in problems[0].message and "ceph.join.request" in problems[0].hint
    assert JOIN_KEY not in " ".join(p.message + p.hint for p in problems)
    assert answers_mod.check_served(ANSWERS_NEW) == []
