"""Join requests approved by an operator (hypercore/cluster/approval.py):
the codes, the store, the sealed answers, and the whole exchange over the
real netboot HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from hypercore.cluster import approval
from hypercore.errors import UserError
from hypercore_netboot.http import serve_in_thread


@pytest.fixture
def store(tmp_path):
    return tmp_path / "join"


def keys(tmp_path, name="k"):
    return approval.Keys.load_or_create(tmp_path / f"{name}.key")


def test_the_code_comes_from_the_key_and_the_key_file_is_private(tmp_path):
    k = keys(tmp_path)
    assert approval.CODE_RE.fullmatch(k.code)
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    again = keys(tmp_path)                                  # kept: the same code after a restart
    assert again.code == k.code and again.public == k.public
    assert keys(tmp_path, "other").code != k.code
    assert approval.fingerprint(k.public).startswith("SHA256:")
    assert approval.normal_code(k.code.lower().replace("-", "")) == k.code
    for bad in ("", "ABCD", "ABCD-EF01", "ABCD-EFGH-IJ"):      # 0 and 1 are not base32 letters
        with pytest.raises(UserError, match="not a join request code"):
            approval.normal_code(bad)


def test_only_the_asking_key_opens_the_answer(tmp_path, store):
    k, bystander = keys(tmp_path), keys(tmp_path, "bystander")
    got = approval.receive(store, approval.request_body("node2", "node", k), "192.168.50.123")
    assert got == {"code": k.code, "state": "waiting"}
    assert approval.answer(store, k.code)[0] == 202
    req = approval.find(store, k.code)
    assert (req.name, req.kind, req.address) == ("node2", "node", "192.168.50.123")
    approval.approve(store, req, {"kind": "node", "token": "SECRET-TOKEN"})
    status, doc = approval.answer(store, k.code)
    assert status == 200 and doc["state"] == "approved"
    assert "SECRET-TOKEN" not in json.dumps(doc)              # what anybody can fetch
    assert k.unseal(doc["sealed"]) == {"kind": "node", "token": "SECRET-TOKEN"}
    with pytest.raises(UserError, match="cannot be opened with this machine's key"):
        bystander.unseal(doc["sealed"])
    with pytest.raises(UserError, match="already answered"):
        approval.find(store, k.code)


def test_deny_and_unknown_codes(tmp_path, store):
    k = keys(tmp_path)
    approval.receive(store, approval.request_body("dl-525400123458", "diskless", k), "10.0.0.9")
    approval.deny(store, approval.find(store, k.code))
    assert approval.answer(store, k.code) == (200, {"state": "denied", "code": k.code, "name": "dl-525400123458",
                                                    "at": approval.answer_doc(store, k.code)["at"]})
    assert approval.answer(store, "AAAA-BBBB")[0] == 404
    assert approval.answer(store, "../../etc/passwd")[0] == 404
    with pytest.raises(UserError, match="no join request with code AAAA-BBBB is waiting"):
        approval.find(store, "aaaa-bbbb")


@pytest.mark.parametrize("body, status", [
    (b"not json", 400),
    (json.dumps({"v": 1, "name": "Node_2", "kind": "node", "key": "A" * 44}).encode(), 400),
    (json.dumps({"v": 1, "name": "node2", "kind": "admin", "key": "A" * 43 + "="}).encode(), 400),
    (json.dumps({"v": 1, "name": "node2", "kind": "node", "key": "QUJD"}).encode(), 400),
    (json.dumps({"v": 2, "name": "node2", "kind": "node", "key": "A" * 43 + "="}).encode(), 400),
    (b"{" + b" " * 3000 + b"}", 413),
])
def test_bad_requests_are_refused_and_keep_nothing(store, body, status):
    with pytest.raises(approval.RequestError) as e:
        approval.receive(store, body, "10.0.0.9")
    assert e.value.status == status
    assert not (store / "requests").exists() or not list((store / "requests").iterdir())


def test_a_flood_stops_at_the_cap_and_requests_expire(tmp_path, store):
    now = 1_000_000.0
    for i in range(approval.MAX_PENDING):
        approval.receive(store, approval.request_body(f"n{i}", "node", keys(tmp_path, f"n{i}")), "10.0.0.9", now)
    late = keys(tmp_path, "late")
    with pytest.raises(approval.RequestError) as e:
        approval.receive(store, approval.request_body("late", "node", late), "10.0.0.9", now)
    assert e.value.status == 429
    # The same key asking again is no new request.
    first = keys(tmp_path, "n0")
    assert approval.receive(store, approval.request_body("n0", "node", first), "10.0.0.9", now)["code"] == first.code
    # A day later they are gone, and a new one is taken.
    later = now + approval.TTL + 1
    assert approval.pending(store, later) == []
    assert approval.receive(store, approval.request_body("late", "node", late), "10.0.0.9", later)["state"] == "waiting"


@pytest.fixture
def server(tmp_path, store):
    root = tmp_path / "http"
    root.mkdir()
    srv = serve_in_thread(str(root), join_dir=store)
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_the_whole_exchange_over_http(tmp_path, store, server):
    _, url = server
    k = keys(tmp_path)
    said, result = [], {}

    def machine():
        try:
            result["material"] = approval.ask(url, "node2", "node", k, say=said.append, interval=0.05,
                                              timeout=30)
        except UserError as e:
            result["error"] = e

    t = threading.Thread(target=machine)
    t.start()
    deadline = time.monotonic() + 20
    while not approval.pending(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    req = approval.find(store, k.code)                         # what the operator compares
    assert req.address == "127.0.0.1" and any(k.code in line and "hypercore cluster approve" in line
                                              for line in said)
    # A bystander fetching the answer URL before and after the approval gets nothing it can use.
    assert requests.get(f"{url}/join/requests/{k.code}", timeout=5).status_code == 202
    approval.approve(store, req, {"kind": "node", "token": "THE-TOKEN"})
    t.join(20)
    assert result == {"material": {"kind": "node", "token": "THE-TOKEN"}}
    fetched = requests.get(f"{url}/join/requests/{k.code}", timeout=5)
    assert fetched.status_code == 200 and "THE-TOKEN" not in fetched.text


def test_a_denied_request_stops_the_machine_in_one_line(tmp_path, store, server):
    _, url = server
    k = keys(tmp_path)
    approval.receive(store, approval.request_body("node2", "node", k), "127.0.0.1")
    approval.deny(store, approval.find(store, k.code))
    with pytest.raises(UserError, match=f"join request {k.code} was denied"):
        approval.ask(url, "node2", "node", k, say=lambda _: None, interval=0.05, timeout=5)


def test_no_answer_in_time_names_the_code_and_the_command(tmp_path, server):
    _, url = server
    k = keys(tmp_path)
    with pytest.raises(UserError) as e:
        approval.ask(url, "node2", "node", k, say=lambda _: None, interval=0.05, timeout=0.3)
    assert k.code in e.value.message and f"hypercore cluster approve {k.code}" in e.value.hint


def test_a_server_that_takes_no_requests_refuses_in_one_line(tmp_path):
    root = tmp_path / "http"
    root.mkdir()
    srv = serve_in_thread(str(root))
    try:
        with pytest.raises(UserError, match="refused the join request .HTTP 404"):
            approval.ask(f"http://127.0.0.1:{srv.server_address[1]}", "node2", "node", keys(tmp_path),
                         say=lambda _: None, interval=0.05, timeout=5)
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_server_never_serves_key_material(server):
    root, url = server
    (root / "hypercore-answers.yaml").write_text("ceph:\n  mode: join\n  join: {request: http://192.168.50.1:8067}\n")
    (root / "leaked.yaml").write_text("ceph:\n  key: AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A==\n")
    (root / "id").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")
    (root / "shadow").write_text("root:$6$saltsalt$" + "a" * 86 + ":19000::::::\n")
    assert requests.get(f"{url}/hypercore-answers.yaml", timeout=5).status_code == 200
    for name in ("leaked.yaml", "id", "shadow"):
        r = requests.get(f"{url}/{name}", timeout=5)
        assert r.status_code == 403 and "AQBv" not in r.text and "BEGIN" not in r.text, name


def test_the_operator_lists_approves_and_denies(tmp_path, store, monkeypatch, capsys):
    """`hypercore cluster approve`: the waiting requests with their fingerprints;
    an approval seals a fresh join token (JOIN_CAPS) to the asking key; a deny."""
    import argparse
    from hypercore.cluster import cli, grant, token as tokmod
    from tests.cluster.test_grant import FakeCeph
    fake, make = FakeCeph(), grant.create
    monkeypatch.setattr(grant, "create", lambda root, ttl: make(root, ttl, run=fake))
    monkeypatch.setattr(approval, "STORE", store)
    node2, other = keys(tmp_path, "node2"), keys(tmp_path, "other")
    approval.receive(store, approval.request_body("node2", "node", node2), "192.168.50.123")
    approval.receive(store, approval.request_body("node3", "node", other), "192.168.50.124")

    def approve(code=None, deny=False, listing=False):
        cli.approve(tmp_path / "state", argparse.Namespace(code=code, deny=deny, list=listing))
        return capsys.readouterr().out

    listed = approve(listing=True)
    assert node2.code in listed and approval.fingerprint(node2.public) in listed and "192.168.50.123" in listed
    out = approve(node2.code.lower())
    assert f"approved: {node2.code}  node node2" in out and "join token" in out
    token = node2.unseal(approval.answer(store, node2.code)[1]["sealed"])["token"]
    assert token not in out
    tok = tokmod.decode(token)
    assert tok.entity in fake.entities and tok.key == "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A=="
    assert approve(other.code, deny=True).startswith(f"denied: {other.code}")
    assert approval.answer(store, other.code)[1]["state"] == "denied"
    assert "no join request is waiting" in approve(listing=True)
    with pytest.raises(UserError, match="--deny needs the CODE"):
        approve(deny=True)


def test_a_store_that_cannot_be_written_is_a_503_not_a_dropped_connection(tmp_path):
    root = tmp_path / "http"
    root.mkdir()
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    srv = serve_in_thread(str(root), join_dir=blocked)
    try:
        r = requests.post(f"http://127.0.0.1:{srv.server_address[1]}/join/requests",
                          data=approval.request_body("node2", "node", keys(tmp_path)), timeout=5)
        assert r.status_code == 503 and "cannot keep join requests" in r.json()["error"]
    finally:
        srv.shutdown()
        srv.server_close()
