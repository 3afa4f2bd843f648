"""The join token: what a new node's answer file needs to join the cluster
(`ceph.join.token`), as one copy-pasteable string.

    base64url(JSON {"v": 1, "fsid": .., "mons": [..], "entity": "client.join-..",
                    "key": "..", "expires": EPOCH})

The identity it names is made for one purpose by `hypercore cluster token`
(grant.py) with JOIN_CAPS: exactly the ceph commands the first-boot join
(installer/hypercore_installer/firstboot/steps_join.py) runs with it, and no
more. Pure: no commands, no clock (callers pass `now`)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import asdict, dataclass

from hypercore.errors import UserError

VERSION = 1
SKEW = 300  # seconds of clock difference between two nodes a token's expiry allows
ENTITY_RE = re.compile(r"^client\.join-[0-9a-f]{8,32}$")
KEY_RE = re.compile(r"^[A-Za-z0-9+/]{38}==$")
FSID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MON_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+)(:[0-9]{1,5})?$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")

# mon caps of a join identity: what the joining node's first contact runs
# (steps_join.contact_cluster). The admin key makes it a member like the
# first node (its monitor, manager and OSDs); the identity is then deleted.
# Whoever holds an unused, unexpired token can therefore become an admin:
# it is printed once, never logged, and expires (SKEW allows for clocks).
JOIN_MON_CAPS = [
    'allow command "fsid"',
    'allow command "auth get" with entity=client.admin',
]
JOIN_CAPS = {"mon": ", ".join(JOIN_MON_CAPS)}


def caps_argv() -> list[str]:
    """`ceph auth get-or-create ENTITY` arguments: service, caps, ..."""
    return [x for svc, caps in sorted(JOIN_CAPS.items()) for x in (svc, caps)]


@dataclass(frozen=True)
class Token:
    fsid: str
    mons: list[str]
    entity: str
    key: str
    expires: int

    def __repr__(self) -> str:  # never the key, not even in a traceback
        return f"Token(fsid={self.fsid}, mons={self.mons}, entity={self.entity}, expires={self.expires})"


def encode(tok: Token) -> str:
    doc = {"v": VERSION, **asdict(tok)}
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HINT = "copy the whole token printed by `hypercore cluster token` on a node of the cluster (one line)"


def _malformed(why: str) -> UserError:
    return UserError(f"the join token is malformed ({why})", hint=HINT)


def decode(text: str) -> Token:
    """The token's content, checked; UserError (one line) when it is not a token."""
    text = (text or "").strip()
    if not TOKEN_RE.fullmatch(text):
        raise _malformed("not base64url text")
    try:
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise _malformed("not base64url-encoded JSON") from None
    if not isinstance(doc, dict):
        raise _malformed("not a JSON object")
    if doc.get("v") != VERSION:
        raise _malformed(f"version {doc.get('v')!r}, this installer reads version {VERSION}")
    checks = {"fsid": lambda v: isinstance(v, str) and FSID_RE.fullmatch(v),
              "mons": lambda v: isinstance(v, list) and v and all(isinstance(m, str) and MON_RE.fullmatch(m)
                                                                 for m in v),
              "entity": lambda v: isinstance(v, str) and ENTITY_RE.fullmatch(v),
              "key": lambda v: isinstance(v, str) and KEY_RE.fullmatch(v),
              "expires": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0}
    for field, good in checks.items():
        if not good(doc.get(field)):
            raise _malformed(f"its {field} is missing or wrong")
    return Token(**{k: doc[k] for k in checks})


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def check_fresh(tok: Token, now: float, skew: int = SKEW) -> None:
    """UserError when the token expired (`skew` seconds of clock difference allowed)."""
    if now > tok.expires + skew:
        raise UserError(f"the join token expired at {when(tok.expires)} (this clock says {when(now)}; "
                        f"{skew // 60} minutes of clock difference are allowed)",
                        hint="make a new one on a node of the cluster: hypercore cluster token; "
                             "if this clock is wrong, fix it first (timedatectl)")


def check_fsid(tok: Token, fsid: str | None) -> None:
    if fsid and fsid.lower() != tok.fsid.lower():
        raise UserError(f"the join token is for cluster {tok.fsid}, not {fsid} (ceph.fsid)",
                        hint="use a token from the cluster you mean, or correct or remove ceph.fsid")
