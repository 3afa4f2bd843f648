"""`hypercore cluster remove NODE`: take a node out of the Ceph cluster
without losing data, from another node.

`plan` is pure (from the cluster's JSON) and refuses what would lose data or
cannot work: an unknown node, this node itself, the last host with OSDs,
the last monitor, a cluster whose placement groups are not all active+clean
(some data may have its only good copy there). Otherwise the plan is:

1. fit the pools to the hosts that stay (sizing.shrink_plan);
2. mark the node's OSDs out, so Ceph copies their data elsewhere (drain);
3. wait until `ceph osd safe-to-destroy` says no data needs them -- on a
   time-out they are marked in again and nothing else changed;
4. purge the OSDs (each marked down first: a node that still runs its
   daemon would keep it up), remove the host from the CRUSH map, its monitor
   from the monitor map, and its manager's key.

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
    shrink: list[list[str]]
    finish: list[list[str]] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"remove {self.node} from the cluster:"]
        for argv in self.shrink:
            lines.append(f"  ceph {' '.join(argv)}")
        if self.osds:
            ids = " ".join(map(str, self.osds))
            lines += [f"  ceph osd out {ids}        (drain: Ceph copies their data to the other hosts)",
                      f"  wait until `ceph osd safe-to-destroy {ids}` says so (else they go back in)"]
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
    return Plan(node, hosts.get(node, []), node in mons, sizing.shrink_plan(len(staying), pools), finish)


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


def execute(p: Plan, say=print, run=run_cmd, clock=time.monotonic, sleep=time.sleep,
            timeout: float = DRAIN_TIMEOUT) -> None:
    for argv in p.shrink:
        _ceph(run, *argv)
    ids = [str(i) for i in p.osds]
    if ids:
        _ceph(run, "osd", "out", *ids)
        say(f"draining osd.{', osd.'.join(ids)} ...")
        deadline = clock() + timeout
        while _ceph(run, "osd", "safe-to-destroy", *ids, check=False).returncode != 0:
            if clock() >= deadline:
                _ceph(run, "osd", "in", *ids)
                raise UserError(f"the data on {p.node}'s OSDs did not move elsewhere within {timeout:.0f} s; "
                                "they are back in and nothing was removed",
                                hint="see `ceph -s` (space on the other hosts?), then run this again")
            sleep(15)
    for argv in p.finish:
        if argv[:2] == ["osd", "purge"]:
            _purge(run, argv[2], sleep)
            continue
        _ceph(run, *argv, check=argv[:2] not in (["auth", "rm"], ["mgr", "fail"]))
    say(f"{p.node} removed: {len(ids)} OSD(s) purged" + (", its monitor removed" if p.mon else "")
        + ". Power it off, or reinstall it before it joins again.")
