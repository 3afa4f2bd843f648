"""The ceph CLI as the steps use it, and pure readers of its JSON.

Under software emulation each `ceph` call costs seconds (Python start-up,
cephx handshake), so the steps ask once and poll sparingly."""

from __future__ import annotations

import json

from hypercore.run import CommandError

CONNECT_TIMEOUT = 30      # seconds the CLI tries to reach a monitor
CALL_TIMEOUT = 180        # seconds before a hung call is killed


class Ceph:
    def __init__(self, host, name: str | None = None):
        self.host = host
        self.name = name  # the cephx identity (a join token's); None: client.admin

    def call(self, *args: str, ok=(0,), timeout: float = CALL_TIMEOUT, secret: bool = False):
        """Run `ceph ARGS`; return the CompletedProcess (`secret`: its output holds a key).
        With a name, its keyring is the default /etc/ceph/ceph.NAME.keyring."""
        who = ["--name", self.name] if self.name else []
        return self.host.run(["ceph", "--connect-timeout", str(CONNECT_TIMEOUT), *who, *args],
                             ok=ok, timeout=timeout, secret=secret)

    def json(self, *args: str, timeout: float = CALL_TIMEOUT):
        out = self.call(*args, "--format", "json", timeout=timeout).stdout
        try:
            return json.loads(out or "null")
        except ValueError:
            raise CommandError(["ceph", *args, "--format", "json"], 0, out,
                               "the ceph CLI printed something that is not JSON") from None

    def try_json(self, *args: str, timeout: float = 60):
        """The JSON answer, or None when the call fails (cluster not up yet)."""
        try:
            return self.json(*args, timeout=timeout)
        except CommandError:
            return None

    def admin_socket(self, asok: str, *args: str):
        """A daemon's local admin socket: no monitor or key needed, answers fast."""
        proc = self.host.run(["ceph", "--admin-daemon", asok, *args], ok=range(0, 256), timeout=60)
        if proc.returncode != 0:
            return None
        try:
            return json.loads(proc.stdout or "null")
        except ValueError:
            return None


# --- readers ----------------------------------------------------------------

def mon_in_quorum(mon_status: dict | None) -> bool:
    return bool(mon_status) and mon_status.get("state") in ("leader", "peon")


def mgr_active(mgr_stat: dict | None) -> str | None:
    """The active manager's name once it is available."""
    if mgr_stat and mgr_stat.get("available"):
        return mgr_stat.get("active_name") or "?"
    return None


def osd_states(osd_dump: dict | None) -> dict[int, tuple[bool, bool]]:
    """{osd id: (up, in)} from `ceph osd dump`."""
    return {o["osd"]: (bool(o.get("up")), bool(o.get("in")))
            for o in (osd_dump or {}).get("osds") or []}


def pools(ls_detail: list | None) -> dict[str, dict]:
    """{pool name: details} from `ceph osd pool ls detail`."""
    return {p["pool_name"]: p for p in ls_detail or []}


def health(doc: dict | None) -> tuple[str, dict[str, str]]:
    """(HEALTH_OK|HEALTH_WARN|HEALTH_ERR, {check code: summary}) from `ceph health`."""
    if not doc:
        return "unknown", {}
    checks = {code: ((c.get("summary") or {}).get("message") or "")
              for code, c in (doc.get("checks") or {}).items()}
    return doc.get("status", "unknown"), checks


def mon_names(mon_dump: dict | None) -> list[str]:
    """The monitors' names, from `ceph mon dump`."""
    return [m.get("name") for m in (mon_dump or {}).get("mons") or []]


def hosts_with_osds(osd_tree: dict | None) -> list[str]:
    """Names of the CRUSH host buckets that hold at least one OSD."""
    nodes = (osd_tree or {}).get("nodes") or []
    return sorted(n["name"] for n in nodes if n.get("type") == "host" and n.get("children"))
