"""Join requests that an operator approves: how a machine on the client
network (a node installed over the network, a diskless node in RAM) gets into
the cluster without anything secret ever being served to that network.

1. The machine makes its own key pair (X25519, PyNaCl; the private key never
   leaves it) and sends its name and public key to a cluster node's netboot
   HTTP server: `POST /join/requests` (`receive`).
2. It shows the request's code, derived from its public key, on its console
   (`code_of`, `fingerprint`), and asks `GET /join/requests/CODE` until there
   is an answer (`answer`).
3. On that cluster node the operator compares the code and runs
   `hypercore cluster approve CODE`: the join material (a join token for a
   node, a narrow keyring for a diskless node) is sealed to that public key
   (`approve`, a libsodium sealed box) and left for the machine to fetch.
   `--deny` answers no.
4. The machine opens the box with its private key (`unseal`).

A bystander on the client network sees public keys, codes and sealed boxes:
nothing that lets it talk to Ceph. It can send requests of its own, but
their codes are not the one on the machine's console; requests are capped
(`MAX_PENDING`) and expire (`TTL`).

The store is one directory (the HTTP server's state directory):
requests/CODE.json (name, kind, public key, client address, time) and
answers/CODE.json (approved with the sealed box, or denied). Pure apart
from those files; no Ceph here (cli.py makes the material)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from hypercore.errors import UserError
from hypercore.files import write_atomic

VERSION = 1
STORE = Path(os.environ.get("HYPERCORE_JOIN_DIR", "/var/lib/hypercore-join"))
TTL = 24 * 3600          # an unanswered request is forgotten after a day
MAX_PENDING = 32         # requests waiting at once (a flood from the client network stops here)
MAX_BODY = 2048          # bytes of a request
KINDS = ("node", "diskless")
NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")     # a host name label
CODE_RE = re.compile(r"[A-Z2-7]{4}-[A-Z2-7]{4}")
PATH = "/join/requests"


class RequestError(ValueError):
    """A request from the client network that is refused (HTTP 4xx); its text is safe to send back."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, size: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not text")
    raw = base64.b64decode(text, validate=True)
    if size is not None and len(raw) != size:
        raise ValueError(f"{len(raw)} bytes, not {size}")
    return raw


def code_of(public_key: bytes) -> str:
    """The short code an operator compares: 40 bits of the key's SHA-256, base32 (XXXX-XXXX)."""
    text = base64.b32encode(hashlib.sha256(public_key).digest())[:8].decode()
    return f"{text[:4]}-{text[4:]}"


def fingerprint(public_key: bytes) -> str:
    """The whole key's fingerprint, shown next to the code (as ssh shows host keys)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_key).digest()).decode().rstrip("=")


def normal_code(text: str) -> str:
    """CODE as an operator may type it (lower case, without the dash), or UserError."""
    t = re.sub(r"[\s-]", "", text or "").upper()
    code = f"{t[:4]}-{t[4:]}"
    if len(t) != 8 or not CODE_RE.fullmatch(code):
        raise UserError(f"{text!r} is not a join request code (8 letters and digits, like ABCD-EF23)",
                        hint="copy the code the new machine shows on its console; "
                             "`hypercore cluster approve --list` shows the waiting ones")
    return code


# ---- the machine that asks ---------------------------------------------------------------

class Keys:
    """The asking machine's key pair, kept in one 0600 file (a node keeps it
    on its disk until the join is done; a diskless node in RAM)."""

    def __init__(self, private):
        self._private = private

    @classmethod
    def load_or_create(cls, path: Path) -> "Keys":
        from nacl.public import PrivateKey
        path = Path(path)
        try:
            return cls(PrivateKey(_unb64(path.read_text().strip(), 32)))
        except FileNotFoundError:
            pass
        except (ValueError, binascii.Error):
            pass                                  # damaged: a new pair (a new code) replaces it
        private = PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, _b64(bytes(private)) + "\n", 0o600)
        return cls(private)

    @property
    def public(self) -> bytes:
        return bytes(self._private.public_key)

    @property
    def code(self) -> str:
        return code_of(self.public)

    def unseal(self, sealed_b64: str) -> dict:
        from nacl.exceptions import CryptoError
        from nacl.public import SealedBox
        try:
            doc = json.loads(SealedBox(self._private).decrypt(_unb64(sealed_b64)))
        except (CryptoError, ValueError, binascii.Error):
            raise UserError("the cluster's answer to this join request cannot be opened with this machine's key",
                            hint="someone answered for another key; deny it there and approve this machine's "
                                 "code again") from None
        if not isinstance(doc, dict):
            raise UserError("the cluster's answer to this join request is not what this version reads",
                            hint="approve it from a node of the same Hypercore version")
        return doc


def request_body(name: str, kind: str, keys: Keys) -> bytes:
    return json.dumps({"v": VERSION, "name": name, "kind": kind, "key": _b64(keys.public)}).encode()


# ---- the cluster node that keeps the requests (the HTTP server's side) --------------------

@dataclass(frozen=True)
class Request:
    code: str
    name: str
    kind: str
    key: bytes
    address: str
    received: float

    def as_json(self) -> dict:
        return {"v": VERSION, "code": self.code, "name": self.name, "kind": self.kind, "key": _b64(self.key),
                "address": self.address, "received": int(self.received)}


def _requests(store: Path) -> Path:
    return Path(store) / "requests"


def _answers(store: Path) -> Path:
    return Path(store) / "answers"


def _load_request(path: Path) -> Request | None:
    try:
        doc = json.loads(path.read_text())
        return Request(code=doc["code"], name=doc["name"], kind=doc["kind"], key=_unb64(doc["key"], 32),
                       address=doc["address"], received=float(doc["received"]))
    except (OSError, ValueError, KeyError, TypeError, binascii.Error):
        return None


def pending(store: Path = STORE, now: float | None = None) -> list[Request]:
    """The requests without an answer, oldest first; expired ones are removed."""
    now = time.time() if now is None else now
    for path in _answers(store).glob("*.json"):
        doc = answer_doc(store, path.stem) or {}
        if now - float(doc.get("at") or 0) > TTL:
            path.unlink(missing_ok=True)
    out = []
    for path in sorted(_requests(store).glob("*.json")):
        req = _load_request(path)
        if req is None or now - req.received > TTL:
            path.unlink(missing_ok=True)
            continue
        if not (_answers(store) / path.name).exists():
            out.append(req)
    return sorted(out, key=lambda r: r.received)


def parse_request(body: bytes) -> tuple[str, str, bytes]:
    """(name, kind, public key) of a request body, or RequestError."""
    if len(body) > MAX_BODY:
        raise RequestError(413, "request too large")
    try:
        doc = json.loads(body)
        name, kind, key = doc["name"], doc["kind"], _unb64(doc["key"], 32)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise RequestError(400, "a join request is JSON {v, name, kind, key (32 bytes, base64)}") from None
    if doc.get("v") != VERSION:
        raise RequestError(400, f"join request version {doc.get('v')!r}; this node reads {VERSION}")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise RequestError(400, "name: a host name (lower-case letters, digits, '-', at most 63)")
    if kind not in KINDS:
        raise RequestError(400, f"kind: one of {', '.join(KINDS)}")
    return name, kind, key


def receive(store: Path, body: bytes, address: str, now: float | None = None) -> dict:
    """Keep a request from the client network; returns {code, state}. The same
    key asking again gets its request back (a machine that restarted)."""
    now = time.time() if now is None else now
    name, kind, key = parse_request(body)
    code = code_of(key)
    path = _requests(store) / f"{code}.json"
    old = _load_request(path)
    if old is not None and old.key != key:
        raise RequestError(409, "another key has this code; make a new key pair")
    if old is None:
        if len(pending(store, now)) >= MAX_PENDING:
            raise RequestError(429, "too many join requests are waiting; ask the operator to answer them")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(Request(code, name, kind, key, address, now).as_json()) + "\n", 0o644)
    return {"code": code, "state": state_of(store, code)}


def state_of(store: Path, code: str) -> str:
    answer = answer_doc(store, code)
    if answer:
        return answer.get("state", "unknown")
    return "waiting" if (_requests(store) / f"{code}.json").exists() else "unknown"


def answer_doc(store: Path, code: str) -> dict | None:
    if not CODE_RE.fullmatch(code or ""):
        return None
    try:
        doc = json.loads((_answers(store) / f"{code}.json").read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def answer(store: Path, code: str) -> tuple[int, dict]:
    """What GET /join/requests/CODE says: 200 and the answer (approved: the
    sealed box; denied), 202 while waiting, 404 for a code nobody asked with."""
    doc = answer_doc(store, code)
    if doc is not None:
        return 200, doc
    if CODE_RE.fullmatch(code or "") and (_requests(store) / f"{code}.json").exists():
        return 202, {"state": "waiting", "code": code}
    return 404, {"state": "unknown", "code": code}


# ---- the operator's side ----------------------------------------------------------------

def find(store: Path, code: str, now: float | None = None) -> Request:
    code = normal_code(code)
    req = next((r for r in pending(store, now) if r.code == code), None)
    if req is None:
        answered = answer_doc(store, code)
        if answered:
            raise UserError(f"join request {code} is already answered ({answered.get('state')})",
                            hint="the machine has its answer; to let it in again, restart its join "
                                 "(it asks with a new code)")
        waiting = ", ".join(r.code for r in pending(store, now)) or "none"
        raise UserError(f"no join request with code {code} is waiting on this node (waiting: {waiting})",
                        hint="approve on the node whose address the machine asks (its console says which); "
                             "check the code on the machine's console")
    return req


def seal(public_key: bytes, material: dict) -> str:
    from nacl.public import PublicKey, SealedBox
    return _b64(SealedBox(PublicKey(public_key)).encrypt(json.dumps(material).encode()))


def approve(store: Path, req: Request, material: dict, now: float | None = None) -> None:
    """Leave the material for the machine that made req, sealed to its key."""
    now = time.time() if now is None else now
    _answers(store).mkdir(parents=True, exist_ok=True)
    write_atomic(_answers(store) / f"{req.code}.json",
                 json.dumps({"state": "approved", "code": req.code, "name": req.name, "at": int(now),
                             "sealed": seal(req.key, material)}) + "\n", 0o644)


def deny(store: Path, req: Request, now: float | None = None) -> None:
    now = time.time() if now is None else now
    _answers(store).mkdir(parents=True, exist_ok=True)
    write_atomic(_answers(store) / f"{req.code}.json",
                 json.dumps({"state": "denied", "code": req.code, "name": req.name, "at": int(now)}) + "\n", 0o644)


# ---- asking, over HTTP (the machine's side) -----------------------------------------------

def ask(url: str, name: str, kind: str, keys: Keys, *, say, sleep=time.sleep, clock=time.monotonic,
        timeout: float = 6000, interval: float = 3, remind: float = 300, unreachable: float = 120) -> dict:
    """Send the request to the cluster node at url (http://ADDRESS:PORT) and
    wait for the operator's answer; returns the unsealed material. Says the
    code when it starts and every `remind` seconds. A node that never answers
    within `unreachable` seconds (a mistyped address) stops it in one line."""
    import requests
    base = url.rstrip("/") + PATH
    code = keys.code
    line = (f"join request {code} (key {fingerprint(keys.public)}) sent to {url}: on a node of the cluster, "
            f"compare the code and run: hypercore cluster approve {code}")
    started = clock()
    deadline, told, sent, reached = started + timeout, None, False, False
    last = "not sent yet"
    while True:
        try:
            if not sent:
                r = requests.post(base, data=request_body(name, kind, keys), timeout=20,
                                  headers={"Content-Type": "application/json"})
                if r.status_code >= 400:
                    raise UserError(f"{url} refused the join request (HTTP {r.status_code}: "
                                    f"{_error_text(r)})",
                                    hint="check ceph.join.request (the cluster node's netboot address and port)")
                sent = reached = True
            r = requests.get(f"{base}/{code}", timeout=20)
            if r.status_code == 404:          # the node forgot it (restarted, expired): ask again
                sent, last = False, "the cluster node did not know the request"
            elif r.status_code == 200:
                doc = r.json()
                if doc.get("state") == "denied":
                    raise UserError(f"join request {code} was denied on the cluster",
                                    hint="if that was a mistake: remove this machine's request key "
                                         "and ask again (a new code)")
                if doc.get("state") == "approved" and isinstance(doc.get("sealed"), str):
                    return keys.unseal(doc["sealed"])
            else:
                last = f"waiting for the operator (HTTP {r.status_code})"
        except requests.RequestException as e:
            last = f"cannot reach {url}: {type(e).__name__}"
            if not reached and clock() - started >= unreachable:
                raise UserError(f"nobody answers join requests at {url} ({type(e).__name__} for "
                                f"{unreachable:.0f} s)",
                                hint="check the address in ceph.join.request (a cluster node's netboot "
                                     "address, port 8067) and that this machine reaches it") from None
        except ValueError:
            last = f"{url} answered something that is not JSON"
        if reached and (told is None or clock() - told >= remind):
            say(line)
            told = clock()
        elif not reached and told is None:
            say(f"join request {code}: {last}; trying again for {unreachable:.0f} s")
            told = clock() - remind            # the code itself once the request is there
        if clock() >= deadline:
            raise UserError(f"no answer to join request {code} within {timeout / 60:.0f} min ({last})",
                            hint=f"approve it on the cluster node at {url}: hypercore cluster approve {code}")
        sleep(interval)


def _error_text(r) -> str:
    try:
        return str(r.json().get("error"))[:200]
    except ValueError:
        return r.text[:200]
