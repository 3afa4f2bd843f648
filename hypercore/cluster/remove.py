"""`hypercore cluster remove NODE`: take a node out of the Ceph cluster
without losing data, from another node.

`plan` is pure (from the cluster's JSON) and refuses what would lose data or
cannot work: an unknown node, this node itself, the last host with OSDs,
the last monitor, a cluster whose placement groups are not all active+clean
(some data may have its only good copy there). Otherwise the plan is:

1. lower the min_size of a pool that the staying hosts could not serve
   meanwhile (sizing.drain_plan; none with the sizes Hypercore sets);
2. mark the node's OSDs out, so Ceph copies their data elsewhere (drain);
3. then fit the pools to the hosts that stay (sizing.fit_pools: fewer
   copies when there are fewer hosts than copies). With the OSDs out, CRUSH
   keeps the copies on the staying hosts, which already hold them; fitting
   first could keep a copy on the leaving node and drop one that stays.
   Without the fit, a drain from three hosts to two never ends: Ceph deletes
   the leaving OSDs' stray copies only when their placement groups are clean;
4. wait until `ceph osd safe-to-destroy` says no data needs them -- on a
   time-out they are marked in again, the pools get their copies back, what
   step 1 changed is put back, and the message says so;
5. the defaults for new pools (sizing.shrink_settings: single-node mode for
   one host); purge the OSDs (each marked down first: a node that still runs
   its daemon would keep it up), remove the host from the CRUSH map, its
   monitor from the monitor map, and its manager's key.

The node's own disks and daemons are not touched (it may be powered off):
reinstall it, or wipe it, before it joins again."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hypercore.errors import UserError
from hypercore.run import CommandError, run as run_cmd

from . import sizing, status

DRAIN_TIMEOUT = 3600
QUERIES = {"osd_tree": ["osd", "tree"], "mon_dump": ["mon", "dump"], "pools": ["osd", "pool", "ls", "detail"],
           "pg_stat": ["pg", "stat"], "mgr_dump": ["mgr", "dump"]}


@dataclass
class Plan:
    node: str
    osds: list[int]
    mon: bool
    fit: list[list[str]]                                     # once the OSDs are out
    finish: list[list[str]] = field(default_factory=list)    # once they are empty
    prepare: list[list[str]] = field(default_factory=list)   # before the drain
    undo: list[list[str]] = field(default_factory=list)      # when the drain times out: fit and prepare undone

    def describe(self) -> str:
        lines = [f"remove {self.node} from the cluster:"]
        lines += [f"  ceph {' '.join(argv)}" for argv in self.prepare]
        fit = [f"  ceph {' '.join(argv)}" for argv in self.fit]
        if self.osds:
            ids = " ".join(map(str, self.osds))
            lines.append(f"  ceph osd out {ids}        (drain: Ceph copies their data to the other hosts)")
            if fit:
                lines += ["  then fit the pools to the hosts that stay (they hold every copy that stays):"] + fit
            lines.append(f"  wait until `ceph osd safe-to-destroy {ids}` says so "
                         f"(else they go back in{' and what changed above is put back' if self.undo else ''})")
        else:
            lines += fit
        lines += [f"  ceph {' '.join(argv)}" for argv in self.finish]
        return "\n".join(lines)


def _hosts(osd_tree: dict) -> dict[str, list[int]]:
    nodes = (osd_tree or {}).get("nodes") or []
    return {n["name"]: sorted(c for c in n.get("children") or [] if c >= 0)
            for n in nodes if n.get("type") == "host"}


def clean(pg_stat: dict) -> tuple[bool, str]:
    """Are all placement groups active+clean? (and a short description)"""
    doc = (pg_stat or {}).get("pg_summary") or pg_stat or {}
    states = {s["name"]: s["num"] for s in doc.get("num_pg_by_state") or []}
    total = doc.get("num_pgs", sum(states.values()))
    ok = states.get("active+clean", 0) == total
    return ok, ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no placement groups"


def plan(node: str, here: str, docs: dict) -> Plan:
    hosts = _hosts(docs.get("osd_tree"))
    mons = [m.get("name") for m in (docs.get("mon_dump") or {}).get("mons") or []]
    known = sorted(set(hosts) | set(mons))
    if node not in known:
        raise UserError(f"no node named {node} in the cluster (nodes: {', '.join(known) or 'none'})",
                        hint="see them with: hypercore cluster status")
    if node == here:
        raise UserError(f"{node} is this node: a node is removed from another one",
                        hint=f"run `hypercore cluster remove {node}` on another node of the cluster")
    staying = [h for h, osds in hosts.items() if h != node and osds]
    if hosts.get(node) and not staying:
        raise UserError(f"{node} holds the cluster's only OSDs: removing it would lose every image",
                        hint="join another node first (hypercore cluster token), then remove this one")
    if node in mons and len(mons) == 1:
        raise UserError(f"{node} runs the cluster's only monitor", hint="join another node first")
    ok, states = clean(docs.get("pg_stat"))
    if not ok:
        raise UserError(f"not every placement group is active+clean ({states}): some data may have its only "
                        f"good copy on {node}", hint="wait for HEALTH_OK (ceph -s), then run this again")
    pools = {p["pool_name"]: p for p in docs.get("pools") or []}
    finish = [["osd", "purge", str(i), "--yes-i-really-mean-it"] for i in hosts.get(node, [])]
    if node in hosts:
        finish.append(["osd", "crush", "rm", node])
    if node in mons:
        finish.append(["mon", "remove", node])
    if (docs.get("mgr_dump") or {}).get("active_name") == node:
        finish.insert(0, ["mgr", "fail", node])
    finish.append(["auth", "rm", f"mgr.{node}"])
    finish += sizing.shrink_settings(len(staying))   # for new pools
    prepare, undo = sizing.drain_plan(len(staying), pools) if hosts.get(node) else ([], [])
    fit, unfit = sizing.fit_pools(len(staying), pools)
    return Plan(node, hosts.get(node, []), node in mons, fit, finish, prepare, unfit + undo)


def _ceph(run, *args: str, check: bool = True):
    return run(["ceph", "--connect-timeout", "30", *args], timeout=120, check=check)


def gather(run=run_cmd) -> dict:
    return status.gather(run, QUERIES)


EBUSY = 16
PURGE_TRIES = 10


def _purge(run, osd: str, sleep) -> None:
    """Ceph purges only a down OSD. The node may still run it (its daemons
    are not ours to stop from here): mark it down and purge at once, again
    while the daemon reports back up (EBUSY)."""
    for _ in range(PURGE_TRIES):
        _ceph(run, "osd", "down", osd)
        proc = _ceph(run, "osd", "purge", osd, "--yes-i-really-mean-it", check=False)
        if proc.returncode == 0:
            return
        if proc.returncode != EBUSY:
            raise CommandError(proc.args, proc.returncode, proc.stdout or "", proc.stderr or "")
        sleep(2)
    raise UserError(f"osd.{osd} keeps coming back up, so Ceph will not purge it (its data has moved already)",
                    hint=f"stop it on its node (systemctl stop ceph-osd@{osd}) or power the node off, "
                         "then run this again")


def _restored(p: Plan, ids: list[str]) -> str:
    """What a timed-out drain put back, for its message."""
    parts = [f"osd.{', osd.'.join(ids)} {'is' if len(ids) == 1 else 'are'} back in"]
    back: dict[str, dict[str, str]] = {}
    for argv in p.undo:             # in order: the last value set is the one it has
        if argv[:3] == ["osd", "pool", "set"]:
            back.setdefault(argv[3], {})[argv[4]] = argv[5]
    parts += [f"{pool} is back to " + " and ".join(f"{k} {v}" for k, v in values.items())
              for pool, values in back.items()]
    return ", ".join(parts) + "; nothing was removed"


def execute(p: Plan, say=print, run=run_cmd, clock=time.monotonic, sleep=time.sleep,
            timeout: float = DRAIN_TIMEOUT) -> None:
    ids = [str(i) for i in p.osds]
    if not ids:
        for argv in p.fit:
            _ceph(run, *argv)
    else:
        for argv in p.prepare:
            _ceph(run, *argv)
        _ceph(run, "osd", "out", *ids)
        for argv in p.fit:          # with the OSDs out, the copies kept are those on the staying hosts
            _ceph(run, *argv)
        say(f"draining osd.{', osd.'.join(ids)} ...")
        deadline = clock() + timeout
        while _ceph(run, "osd", "safe-to-destroy", *ids, check=False).returncode != 0:
            if clock() >= deadline:
                _ceph(run, "osd", "in", *ids)
                for argv in p.undo:
                    _ceph(run, *argv)
                raise UserError(f"the data on {p.node}'s OSDs did not move elsewhere within {timeout:.0f} s: "
                                + _restored(p, ids),
                                hint="see `ceph -s` and `ceph osd safe-to-destroy "
                                     f"{' '.join(ids)}` (space on the other hosts? a powered-off node's OSDs "
                                     "cannot report that they are empty: start it), then run this again")
            sleep(15)
    for argv in p.finish:
        if argv[:2] == ["osd", "purge"]:
            _purge(run, argv[2], sleep)
            continue
        _ceph(run, *argv, check=argv[:2] not in (["auth", "rm"], ["mgr", "fail"]))
    say(f"{p.node} removed: {len(ids)} OSD(s) purged" + (", its monitor removed" if p.mon else "")
        + ". Power it off, or reinstall it before it joins again.")
