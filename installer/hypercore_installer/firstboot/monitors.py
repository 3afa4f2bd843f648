"""The existing cluster's monitors as a joining node names them (a token's
or `ceph.mon_hosts`' addresses: IP or host name, with an optional port) and
whether any of them answers, checked before anything else of the join so a
wrong address stops in seconds with its own message."""

from __future__ import annotations

from hypercore.errors import UserError

from .context import Context

MON_PORTS = (3300, 6789)   # msgr2, v1
REACH_TIMEOUT = 60         # s: the network may still be coming up


def _split(mon: str) -> tuple[str, str]:
    """(host, port or "") of an address: 10.0.2.15:6789, [fd00::1]:3300, fd00::1, host.example."""
    if mon.startswith("["):
        host, _, rest = mon[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    return tuple(mon.rsplit(":", 1)) if mon.count(":") == 1 else (mon, "")


def host_of(mon: str) -> str:
    """10.0.2.15:6789 -> 10.0.2.15, [fd00::1]:3300 -> fd00::1, host.example -> host.example"""
    return _split(mon)[0]


def endpoints(mon: str) -> list[tuple[str, int]]:
    """Where a monitor listens: its own port when the address names one, else both defaults."""
    host, port = _split(mon)
    return [(host, int(port))] if port.isdigit() else [(host, p) for p in MON_PORTS]


def wait_for_one(ctx: Context, mons: list[str], where: str) -> list[str]:
    """The monitors that accept a connection, once at least one does (for up
    to REACH_TIMEOUT); none: stop with the addresses tried and where they
    came from."""
    def probe():
        up = [m for m in mons if any(ctx.host.can_connect(h, p) for h, p in endpoints(m))]
        return up, "no answer"

    try:
        return ctx.wait("a monitor to answer", probe, timeout=REACH_TIMEOUT, interval=5, hint="")
    except UserError:
        tried = ", ".join(f"{h}:{p}" for m in mons for h, p in endpoints(m))
        raise UserError(f"no monitor of the cluster answers at {tried} (TCP)",
                        hint=f"check {where} in /etc/hypercore/answers.yaml (`ceph mon dump` on a node of the "
                             "cluster shows the monitors' addresses) and that this node has a route to them "
                             "(ip route get ADDRESS)") from None
