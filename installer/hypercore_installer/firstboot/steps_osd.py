"""Steps shared by both modes (this node's OSDs) and the new cluster's pool
and health. Each can run again: an OSD that ceph-volume already lists for a
disk is kept (and started if it is not running), a pool that exists is only
checked."""

from __future__ import annotations

import json

from hypercore.errors import UserError
from hypercore.run import CommandError

from . import disks as disks_mod
from .cluster import health, osd_states, pools
from .context import Context

POOL = "vm-pool"
POOL_PG_NUM = 32
DEVICE_HEALTH_POOL = "device_health_metrics"
OSD_CREATE_TIMEOUT = 1800
OSD_UP_TIMEOUT = 600
HEALTH_TIMEOUT = 900
HEALTH_INTERVAL = 10


def _lvm_list(ctx: Context) -> dict:
    proc = ctx.host.run(["ceph-volume", "lvm", "list", "--format", "json"], ok=(0, 1), timeout=300)
    try:
        listing = json.loads(proc.stdout or "{}")
    except ValueError:
        return {}
    return listing if isinstance(listing, dict) else {}


def _osd_disks(ctx: Context) -> list[disks_mod.OsdDisk]:
    lsblk = json.loads(ctx.host.run(["lsblk", "-J", "-d", "-o", "PATH,TYPE,SERIAL,WWN,SIZE,MODEL"]).stdout
                       or "{}")
    return disks_mod.resolve_osd_disks(ctx.record, ctx.answers, lsblk, ctx.host.exists)


def _zap_hint(disk: disks_mod.OsdDisk) -> str:
    return (f"if {disk.path} holds nothing you need, erase it with `ceph-volume lvm zap --destroy {disk.path}`")


def create_osds(ctx: Context) -> None:
    """One BlueStore OSD per disk (`ceph-volume lvm create`), unless
    ceph-volume already lists one of this cluster on it."""
    fsid = ctx.facts["fsid"]
    osds = ctx.facts.setdefault("osds", {})
    listing = _lvm_list(ctx)
    for disk in _osd_disks(ctx):
        device = ctx.host.realpath(disk.path)
        found = disks_mod.osds_on_device(listing, device)
        if not found:
            ctx.say(f"    creating an OSD on {disk.path} ({device})")
            try:
                ctx.host.run(["ceph-volume", "lvm", "create", "--bluestore", "--data", disk.path],
                             timeout=OSD_CREATE_TIMEOUT)
            except CommandError as e:
                e.hint = _zap_hint(disk)  # the engine's failure line shows it
                raise
            listing = _lvm_list(ctx)
            found = disks_mod.osds_on_device(listing, device)
            if not found:
                raise UserError(f"ceph-volume finished but lists no OSD on {disk.path}",
                                hint="see ceph-volume's log: /var/log/ceph/ceph-volume.log")
        ours = [o for o in found if o.cluster_fsid == fsid]
        if not ours:
            raise UserError(f"{disk.path} holds an OSD of another cluster ({found[0].cluster_fsid})",
                            hint=_zap_hint(disk))
        osd = ours[0]
        unit = f"ceph-osd@{osd.osd_id}"
        if ctx.host.run(["systemctl", "is-active", "--quiet", unit], ok=range(0, 256)).returncode != 0:
            ctx.say(f"    starting osd.{osd.osd_id} on {disk.path}")
            ctx.host.run(["ceph-volume", "lvm", "activate", str(osd.osd_id), osd.osd_fsid], timeout=600)
        osds[disk.path] = osd.osd_id
        ctx.save_facts()
        ctx.say(f"    osd.{osd.osd_id} on {disk.path}")
    # Daemons start at every boot: the targets (ceph-volume enables each OSD).
    ctx.host.run(["systemctl", "enable", "ceph.target", "ceph-mon.target", "ceph-mgr.target",
                  "ceph-osd.target"])


def wait_osds_up(ctx: Context) -> None:
    ids = sorted(set(ctx.facts.get("osds", {}).values()))

    def probe():
        states = osd_states(ctx.ceph.try_json("osd", "dump"))
        ok = all(states.get(i) == (True, True) for i in ids)
        shown = ", ".join(f"osd.{i} " + ("up" if states.get(i, (0, 0))[0] else "down")
                          + ("/in" if states.get(i, (0, 0))[1] else "/out") for i in ids)
        return ok, shown

    ctx.wait(f"{len(ids)} OSD(s) up and in", probe, timeout=OSD_UP_TIMEOUT, interval=5,
             hint="see journalctl -u 'ceph-osd@*' and ceph osd tree")


def make_pool(ctx: Context) -> None:
    """vm-pool for VM disks: RBD, one copy (single node, see
    render.SINGLE_NODE_SETTINGS); device_health_metrics likewise one copy."""
    ceph = ctx.ceph
    have = pools(ceph.json("osd", "pool", "ls", "detail"))
    if POOL not in have:
        ceph.call("osd", "pool", "create", POOL, str(POOL_PG_NUM), str(POOL_PG_NUM), "replicated")
        have = pools(ceph.json("osd", "pool", "ls", "detail"))
    for name in (POOL, DEVICE_HEALTH_POOL):
        pool = have.get(name)
        if pool is None:
            continue
        if pool.get("size") != 1:
            ceph.call("osd", "pool", "set", name, "size", "1", "--yes-i-really-mean-it")
        if pool.get("min_size") != 1:
            ceph.call("osd", "pool", "set", name, "min_size", "1")
    if "rbd" not in (have[POOL].get("application_metadata") or {}):
        ctx.host.run(["rbd", "pool", "init", POOL], timeout=600)
    ctx.say(f"    pool {POOL}: RBD, size 1, {have[POOL].get('pg_num', POOL_PG_NUM)} placement groups")


def wait_healthy(ctx: Context) -> None:
    """Poll `ceph health` until HEALTH_OK; name each check as it shows up."""
    seen: set[str] = set()

    def probe():
        status, checks = health(ctx.ceph.try_json("health"))
        for code in sorted(set(checks) - seen):
            ctx.say(f"    health: {code}: {checks[code]}")
            seen.add(code)
        state = status + "".join(f"; {c}: {m}" for c, m in sorted(checks.items()))
        return status == "HEALTH_OK", state

    ctx.wait("HEALTH_OK", probe, timeout=HEALTH_TIMEOUT, interval=HEALTH_INTERVAL,
             hint="see `ceph health detail`")
    ctx.facts["health_checks_seen"] = sorted(seen)
    ctx.save_facts()
