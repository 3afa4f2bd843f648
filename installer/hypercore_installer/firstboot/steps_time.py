"""Clocks. Ceph's monitors warn above 0.05 s of difference (MON_CLOCK_SKEW)
and cephx refuses a node whose clock is minutes off, so the nodes of a
cluster keep one time: every node serves NTP (chrony) to the others -- also
when the site has no NTP server (local stratum 10) -- and a joining node
takes its time from the cluster's monitors before it adds anything. With an
NTP server upstream (Debian's pool, or DHCP's) the first node follows it and
the others follow the first."""

from __future__ import annotations

import ipaddress
import json
import os

from hypercore.errors import UserError

from .context import Context
from . import monitors
from .steps_join import join_mons, join_source

MAX_OFFSET = 0.5        # seconds: what is left after chrony's first step
SYNC_TIMEOUT = 180


def server_conf(networks: list[str]) -> str:
    """chrony serves the cluster's subnets only: this node's Ceph network and
    its netboot client network (where nodes are installed and join from)."""
    return ("# Written by hypercore-install firstboot: the other Hypercore nodes may set their clocks\n"
            "# from it (Ceph's monitors need agreeing clocks): this node's Ceph network and its\n"
            "# netboot client network. A node that joins from another (routed) subnet: add\n"
            "# `allow SUBNET` in another file of /etc/chrony/conf.d/ and `systemctl restart chrony`.\n"
            "# It serves its own time when it has no NTP server itself.\n"
            + "".join(f"allow {net}\n" for net in networks)
            + "local stratum 10\n")


def _networks_of(addr_json: str) -> list[str]:
    """The subnets of the global addresses in `ip -j addr show` output."""
    out = []
    for link in json.loads(addr_json or "[]"):
        for a in link.get("addr_info", []):
            if a.get("scope") == "global" and a.get("local") and a.get("prefixlen") is not None:
                out.append(str(ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}").network))
    return out


def allowed_networks(ctx: Context) -> list[str]:
    """This node's Ceph network, and the netboot client network: the answers'
    `netboot.address` (DHCP mode), or the subnets on `netboot.interface` (proxy mode)."""
    nets = [ctx.facts["network"]] if ctx.facts.get("network") else []
    nb = ctx.answers.get("netboot") or {}
    if nb.get("enabled") and nb.get("address"):
        nets.append(str(ipaddress.ip_interface(nb["address"]).network))
    elif nb.get("enabled") and nb.get("interface"):
        nets += _networks_of(ctx.host.run(["ip", "-j", "addr", "show", "dev", nb["interface"]],
                                          ok=range(0, 256)).stdout)
    return list(dict.fromkeys(nets))


def sources(mons: list[str]) -> str:
    """The monitors, preferred over any other source (Debian's pool, DHCP's
    servers): the nodes must agree with each other first; the first node
    follows the upstream time for all of them."""
    return ("# Written by hypercore-install firstboot (ceph.mode: join): the cluster's monitors,\n"
            "# preferred over other sources (Ceph needs the nodes' clocks to agree).\n"
            + "".join(f"server {monitors.host_of(m)} iburst prefer\n" for m in mons))


def tracking(csv: str) -> tuple[str, float, str] | None:
    """(reference address, system clock offset in s, leap status) from `chronyc -c tracking`."""
    fields = csv.strip().split(",")
    if len(fields) < 14:
        return None
    try:
        return fields[1], float(fields[4]), fields[13]
    except ValueError:
        return None


def _write(ctx: Context, path: str, text: str) -> None:
    ctx.host.makedirs(os.path.dirname(path), 0o755)
    ctx.host.write_file(path, text, 0o644)


def sync_time(ctx: Context) -> None:
    """Serve the time; when joining, follow the monitors first and wait until
    this clock agrees with theirs (else stop, before the cluster sees us)."""
    networks = allowed_networks(ctx)
    _write(ctx, ctx.paths.chrony_server_conf, server_conf(networks))
    if ctx.facts.get("mode") != "join":
        ctx.host.run(["systemctl", "restart", "chrony.service"])
        ctx.say(f"    this node serves NTP to {', '.join(networks) or 'no network'} "
                "(chrony, local stratum 10 without upstream)")
        return
    mons = join_mons(ctx)
    monitors.wait_for_one(ctx, mons, join_source(ctx))   # a wrong address stops here, in seconds
    _write(ctx, ctx.paths.chrony_sources, sources(mons))
    ctx.host.run(["systemctl", "restart", "chrony.service"])  # anew: its first updates may step the clock
    wanted = {monitors.host_of(m) for m in mons}

    def probe():
        got = tracking(ctx.host.run(["chronyc", "-c", "-n", "tracking"], ok=range(0, 256)).stdout or "")
        if not got:
            return None, "chronyd does not answer"
        ref, offset, leap = got
        synced = ref in wanted and leap == "Normal" and abs(offset) < MAX_OFFSET
        if not synced:
            # Measure now rather than at the next poll (64 s apart once
            # iburst's first four are spent, e.g. on a monitor not yet reachable).
            ctx.host.run(["chronyc", "burst", "4/4"], ok=range(0, 256))
        return (ref if synced else None), f"reference {ref or 'none'}, offset {offset:+.3f} s, {leap}"

    try:
        ref = ctx.wait("this clock to follow the monitors' (NTP)", probe, timeout=SYNC_TIMEOUT, interval=5,
                       hint="")
    except UserError as e:
        raise UserError(f"this node's clock does not follow the monitors ({', '.join(sorted(wanted))}): "
                        f"{e.message.split(': ', 1)[-1]}",
                        hint="check that the monitors' nodes answer NTP (UDP port 123; chronyc sources -v); "
                             "a clock hours off: set it (date -s) and run `systemctl restart hypercore-firstboot`"
                        ) from None
    ctx.say(f"    this clock follows {ref} (NTP)")
