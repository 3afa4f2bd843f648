"""The ready report: what the node is, how Ceph is, what to type next.

Printed at the end of the bootstrap (the unit's output goes to the console),
written to /etc/issue.d/hypercore.issue (agetty shows it above the login
prompt) and printed by `hypercore-install status`. It holds no secret."""

from __future__ import annotations

import os

from .cluster import Ceph
from .steps_osd import POOL

WIDTH = 38


def cluster_summary(status: dict | None) -> dict:
    """The few numbers the report shows, from `ceph -s --format json`
    (None when the cluster does not answer)."""
    if not status:
        return {"health": "unreachable"}
    osdmap = status.get("osdmap") or {}
    osdmap = osdmap.get("osdmap", osdmap)  # nested in older releases
    return {"health": (status.get("health") or {}).get("status", "unknown"),
            "checks": sorted((status.get("health") or {}).get("checks") or {}),
            "mons": (status.get("monmap") or {}).get("num_mons"),
            "osds": osdmap.get("num_osds"), "osds_up": osdmap.get("num_up_osds"),
            "osds_in": osdmap.get("num_in_osds")}


def render_report(facts: dict, summary: dict) -> str:
    """The report's text. Pure."""
    host, ip = facts.get("host", "?"), facts.get("ip", "?")
    health = summary.get("health", "unknown")
    mode = facts.get("mode", "new")
    title = "Ceph is ready (HEALTH_OK)" if health == "HEALTH_OK" else f"Ceph is not ready ({health})"
    lines = [f"Hypercore node {host}: {title}", ""]
    addr = f"{ip}/{facts.get('prefixlen', '?')} on {facts.get('interface', '?')}"
    if facts.get("network_mode") == "dhcp":
        addr += " (DHCP: keep this lease; the Ceph monitor is bound to it)" if mode == "new" else " (DHCP)"
    lines.append(f"  address   {addr}")
    cluster = f"fsid {facts.get('fsid', '?')}"
    lines.append(f"  cluster   {cluster}")
    if summary.get("osds") is not None:
        lines.append(f"            {summary.get('mons', '?')} monitor(s), {summary['osds_up']} of "
                     f"{summary['osds']} OSDs up, {summary['osds_in']} in")
    if health != "HEALTH_OK":
        shown = ", ".join(summary.get("checks") or []) or "no answer from the monitors"
        lines.append(f"  health    {health}: {shown} (see: ceph health detail)")
    osds = facts.get("osds") or {}
    for i, (disk, osd_id) in enumerate(sorted(osds.items(), key=lambda kv: kv[1])):
        lines.append(f"  {'OSDs' if i == 0 else '':<8}  osd.{osd_id} on {disk}")
    if mode == "new":
        lines.append(f"  storage   pool {POOL} (RBD), 1 copy: a single node has no redundancy")
        lines.append("            until more nodes join (ceph.mode: join)")
    if facts.get("repo_key"):
        lines.append(f"  repo key  {facts['repo_key']}")
        lines.append("            (put it in the other appliances' repo.authorized_keys)")
    lines += ["", "  next:"]
    for cmd, what in ((f"ssh root@{ip}", "log in"),
                      ("ceph -s", "the cluster's status"),
                      ("create-vm NAME RAM_MB CPUS new:20G", f"a VM with its disk in {POOL}"),
                      *([("hypercore repo peers", "the image repository's peers and this key")]
                        if facts.get("repo_key") else []),
                      ("hypercore-install status", "this report again")):
        lines.append(f"    {cmd:<{WIDTH}}{what}")
    return "\n".join(lines) + "\n"


def current_report(ctx) -> str:
    status = Ceph(ctx.host, ctx.facts.get("ceph_name")).try_json("status", timeout=90)
    return render_report(ctx.facts, cluster_summary(status))


def publish(ctx, text: str) -> None:
    """The report above the login prompt, and on the console when this run's
    output does not already go there (a run by hand, not by the unit)."""
    issue = ctx.paths.issue
    ctx.host.makedirs(os.path.dirname(issue), 0o755)
    # agetty expands backslash escapes in issue files.
    ctx.host.write_file(issue, "\n" + text.replace("\\", "\\\\") + "\n", 0o644)
    ctx.host.run(["agetty", "--reload"], ok=range(0, 256))
    if not os.environ.get("INVOCATION_ID"):
        try:
            with open(ctx.paths.console, "w") as console:
                console.write("\n" + text.replace("\n", "\r\n") + "\r\n")
        except OSError:
            pass


def write_report(ctx) -> None:
    text = current_report(ctx)
    ctx.say("")
    ctx.say(text)
    publish(ctx, text)
