"""Join identities on an existing node: make one (and its token), revoke one,
sweep the expired ones. Every call goes through hypercore.run.run as an
argument list; the key only ever travels on a command's stdout, which run()
never logs, and is never put in an error message.

STATE/cluster/tokens.json (0600) records {entity: {"created", "expires"}} of
the tokens made on this node: no key."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from hypercore.errors import UserError
from hypercore.files import write_atomic
from hypercore.run import CommandError, run as run_cmd

from . import token as tokmod

ENOENT = 2  # `ceph auth rm` of an entity that does not exist


def registry(state_root: Path) -> Path:
    return Path(state_root) / "cluster" / "tokens.json"


def load(path: Path) -> dict[str, dict]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}", hint=f"fix or remove {path} (it only lists join tokens)") from None
    return doc if isinstance(doc, dict) else {}


def save(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", 0o600)


def _ceph_json(run, *args: str):
    proc = run(["ceph", *args, "-f", "json"])
    try:
        return json.loads(proc.stdout or "null")
    except ValueError:
        raise CommandError(["ceph", *args, "-f", "json"], 0, "", "the ceph CLI printed something that is not JSON") from None


def mon_addresses(mon_dump: dict) -> list[str]:
    """What a joining node puts in mon_host: each monitor's address, without the
    port when it listens on the defaults (3300 msgr2, 6789 v1)."""
    out = []
    for mon in (mon_dump or {}).get("mons") or []:
        vec = ((mon.get("public_addrs") or {}).get("addrvec")) or []
        ports = {a.get("type"): a["addr"].rsplit(":", 1) for a in vec if a.get("addr")}
        if not ports:
            continue
        host = next(iter(ports.values()))[0]
        default = ports.get("v2", [host, "3300"])[1] == "3300" and ports.get("v1", [host, "6789"])[1] == "6789"
        out.append(host if default else ":".join(ports.get("v1") or ports["v2"]))
    return out


def create(state_root: Path, ttl: int, *, run=run_cmd, now: float | None = None) -> str:
    """A new join identity with JOIN_CAPS, valid for ttl seconds; returns its token."""
    now = time.time() if now is None else now
    fsid = _ceph_json(run, "fsid")["fsid"]
    mons = mon_addresses(_ceph_json(run, "mon", "dump"))
    if not mons:
        raise UserError("the cluster's monitor map lists no monitor address", hint="check `ceph mon dump`")
    entity = f"client.join-{secrets.token_hex(6)}"
    expires = int(now + ttl)
    path = registry(state_root)
    reg = load(path)
    reg[entity] = {"created": int(now), "expires": expires}
    save(path, reg)  # recorded first: a crash after auth get-or-create still leaves it to the sweep
    argv = ["ceph", "auth", "get-or-create", entity, *tokmod.caps_argv(), "-f", "json"]
    proc = run(argv, check=False)
    if proc.returncode != 0:  # its stdout could hold the key: only stderr is shown
        raise CommandError(argv, proc.returncode, "", proc.stderr or "")
    try:
        key = json.loads(proc.stdout)[0]["key"]
    except (ValueError, LookupError, TypeError):
        raise CommandError(argv, 0, "", "ceph auth get-or-create printed no key") from None
    return tokmod.encode(tokmod.Token(fsid=fsid, mons=mons, entity=entity, key=key, expires=expires))


def _auth_rm(run, entity: str) -> None:
    proc = run(["ceph", "auth", "rm", entity], check=False)
    if proc.returncode not in (0, ENOENT):
        raise CommandError(["ceph", "auth", "rm", entity], proc.returncode, proc.stdout or "", proc.stderr or "")


def revoke(state_root: Path, entity: str, *, run=run_cmd) -> str:
    if not tokmod.ENTITY_RE.fullmatch(entity):
        raise UserError(f"{entity!r} is not a join identity (client.join-...)",
                        hint="`hypercore cluster token --list` shows them; only join identities are revoked here")
    _auth_rm(run, entity)
    path = registry(state_root)
    reg = load(path)
    if reg.pop(entity, None) is not None:
        save(path, reg)
    return f"{entity} revoked"


def sweep(state_root: Path, *, run=run_cmd, now: float | None = None) -> list[str]:
    """Remove the identities whose token expired (no clock-skew allowance here:
    the joining side allows it, the cluster does not keep them longer)."""
    now = time.time() if now is None else now
    path = registry(state_root)
    reg = load(path)
    gone = []
    for entity, rec in sorted(reg.items()):
        if not isinstance(rec, dict) or not isinstance(rec.get("expires"), int) or rec["expires"] <= now:
            if tokmod.ENTITY_RE.fullmatch(entity):
                _auth_rm(run, entity)
            del reg[entity]
            gone.append(entity)
    if gone:
        save(path, reg)
    return gone


def listing(state_root: Path, now: float | None = None) -> list[tuple[str, int, bool]]:
    now = time.time() if now is None else now
    return [(e, r.get("expires", 0), r.get("expires", 0) <= now)
            for e, r in sorted(load(registry(state_root)).items()) if isinstance(r, dict)]


def parse_ttl(text: str) -> int:
    """30m, 1h, 2d, 900 (seconds) -> seconds; between 5 minutes and 7 days."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        seconds = int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t)
    except ValueError:
        raise UserError(f"--ttl {text!r} is not a duration", hint="write e.g. 30m, 1h or 2d") from None
    if not 300 <= seconds <= 7 * 86400:
        raise UserError(f"--ttl {text} is outside 5 minutes .. 7 days",
                        hint="a join token is for the next install: 1h is usual") from None
    return seconds

