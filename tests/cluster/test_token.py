"""The join token: its format, its checks, and the caps of the identity it names."""

from __future__ import annotations

import base64
import json
import re

import pytest

from hypercore.cluster import token as tokmod
from hypercore.errors import UserError

KEY = "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A=="
FSID = "6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
NOW = 1_800_000_000
TOK = tokmod.Token(fsid=FSID, mons=["10.0.2.15", "10.0.2.16:6789"], entity="client.join-0a1b2c3d4e5f",
                   key=KEY, expires=NOW + 3600)


def raw(doc) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def test_round_trip_is_one_base64url_line():
    text = tokmod.encode(TOK)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text)
    assert tokmod.decode(text) == TOK
    assert tokmod.decode(f"  {text}\n") == TOK                 # pasted with blanks around
    doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    assert doc == {"v": 1, "fsid": FSID, "mons": TOK.mons, "entity": TOK.entity, "key": KEY,
                   "expires": NOW + 3600}


def test_the_key_stays_out_of_its_repr():
    assert KEY not in repr(TOK) and KEY not in str(TOK)


@pytest.mark.parametrize("text, why", [
    ("", "not base64url text"),
    ("not a token!", "not base64url text"),
    ("AAAA", "not base64url-encoded JSON"),
    (raw([1, 2]), "not a JSON object"),
    (raw({"v": 2}), "version 2, this installer reads version 1"),
    (raw({"v": 1, "fsid": FSID, "mons": ["10.0.2.15"], "entity": "client.admin", "key": KEY, "expires": 5}),
     "its entity is missing or wrong"),
    (raw({"v": 1, "fsid": FSID, "mons": [], "entity": "client.join-00aa11bb", "key": KEY, "expires": 5}),
     "its mons is missing or wrong"),
    (raw({"v": 1, "fsid": FSID, "mons": ["10.0.2.15\nkey = x"], "entity": "client.join-00aa11bb", "key": KEY,
          "expires": 5}), "its mons is missing or wrong"),
    (raw({"v": 1, "fsid": FSID, "mons": ["a"], "entity": "client.join-00aa11bb", "key": "short", "expires": 5}),
     "its key is missing or wrong"),
    (raw({"v": 1, "fsid": FSID, "mons": ["a"], "entity": "client.join-00aa11bb", "key": KEY, "expires": "soon"}),
     "its expires is missing or wrong"),
])
def test_malformed_tokens_are_one_line(text, why):
    with pytest.raises(UserError) as e:
        tokmod.decode(text)
    assert e.value.message == f"the join token is malformed ({why})"
    assert "\n" not in e.value.message and e.value.hint
    assert KEY not in str(e.value)


def test_a_cut_token_is_malformed():
    text = tokmod.encode(TOK)
    with pytest.raises(UserError, match="malformed"):
        tokmod.decode(text[:-7])


def test_expiry_allows_five_minutes_of_clock_difference():
    tokmod.check_fresh(TOK, NOW)
    tokmod.check_fresh(TOK, TOK.expires + 299)            # a clock 5 minutes ahead still joins
    with pytest.raises(UserError) as e:
        tokmod.check_fresh(TOK, TOK.expires + 301)
    assert "expired at 2027-01-15 09:00 UTC" in e.value.message
    assert "5 minutes of clock difference are allowed" in e.value.message
    assert "hypercore cluster token" in e.value.hint


def test_fsid_mismatch():
    tokmod.check_fsid(TOK, None)
    tokmod.check_fsid(TOK, FSID.upper())
    with pytest.raises(UserError, match=f"the join token is for cluster {FSID}, not 00000000"):
        tokmod.check_fsid(TOK, "00000000-0000-4000-8000-000000000000")


def test_caps_are_only_commands_and_never_broad():
    caps = tokmod.JOIN_CAPS
    assert set(caps) == {"mon"}                                  # no osd, mgr or mds caps at all
    grants = [g.strip() for g in caps["mon"].split(", ")]
    assert grants == tokmod.JOIN_MON_CAPS
    for g in grants:
        assert g.startswith('allow command "'), g                # no "allow *", "allow r", "allow rw"
        assert "*" not in g and "profile" not in g
    # Only the admin key, by name: no other entity's key, no key made or deleted.
    assert [g for g in grants if '"auth' in g] == ['allow command "auth get" with entity=client.admin']
    assert not any('"auth get-or-create' in g or '"auth rm' in g or '"auth add' in g for g in grants)
    assert tokmod.caps_argv() == ["mon", caps["mon"]]

