"""How many copies the pools keep as hosts join and leave. Pure: lists of
`ceph` arguments, tested in tests/firstboot/test_join.py and
tests/cluster/test_remove.py.

Single-node mode, a deliberate decision: with one host there is nowhere to
put a second copy, so pools have size 1 and Ceph's POOL_NO_REDUNDANCY
warning (which would hold the cluster at HEALTH_WARN for good) is switched
off -- only while the cluster has one host. A join (grow_plan) raises the
pool sizes when a second host brings OSDs and removes every one of these
settings, which turns the warning back on; removing hosts down to one
(fit_pools, shrink_settings) puts them back."""

from __future__ import annotations

HOST_RULE = "replicated_host"   # copies on different hosts (made by the first join)
REPLICATED = 1                  # pg_pool_t::TYPE_REPLICATED in `ceph osd pool ls detail`

# (who, option, value), as `ceph config set WHO OPTION VALUE` sets them.
SINGLE_NODE_SETTINGS = [
    ("global", "osd_pool_default_size", "1"),
    ("global", "osd_pool_default_min_size", "1"),
    ("mon", "mon_allow_pool_size_one", "true"),
    ("global", "mon_warn_on_pool_no_redundancy", "false"),
]


def copies(n_hosts: int) -> tuple[int, int]:
    """(size, min_size) for a cluster of n_hosts hosts with OSDs: one copy per host, at most 3."""
    size = max(1, min(3, n_hosts))
    return size, 2 if size >= 3 else 1


def _new_pool_defaults(n_hosts: int) -> list[list[str]]:
    """New pools' copies on a cluster of n_hosts (two or more) hosts: set below
    three copies, Ceph's own default (nothing to set) from three on."""
    size, min_size = copies(n_hosts)
    if size >= 3:
        return []
    return [["config", "set", "global", "osd_pool_default_size", str(size)],
            ["config", "set", "global", "osd_pool_default_min_size", str(min_size)]]


def _replicated(pool_details: dict[str, dict]):
    return [(name, p) for name, p in sorted(pool_details.items()) if p.get("type", REPLICATED) == REPLICATED]


def grow_plan(n_hosts: int, pool_details: dict[str, dict], rule_id: int | None) -> list[list[str]]:
    """The `ceph` commands that take a cluster grown to n_hosts hosts out of
    single-node mode. Pools with fewer copies than hosts allow (at most 3)
    get the per-host rule and more copies; the single-node settings are
    removed (POOL_NO_REDUNDANCY warns again); with two hosts new pools
    default to 2 copies. Nothing when there is still one host."""
    if n_hosts < 2:
        return []
    size, min_size = copies(n_hosts)
    cmds: list[list[str]] = []
    for name, pool in _replicated(pool_details):
        if pool.get("size", 0) < size:
            cmds += [["osd", "pool", "set", name, "crush_rule", HOST_RULE],
                     ["osd", "pool", "set", name, "size", str(size)],
                     ["osd", "pool", "set", name, "min_size", str(min_size)]]
    cmds += [["config", "rm", who, option] for who, option, _ in SINGLE_NODE_SETTINGS]
    cmds += _new_pool_defaults(n_hosts)
    if rule_id is not None:
        cmds.append(["config", "set", "global", "osd_pool_default_crush_rule", str(rule_id)])
    return cmds


def drain_plan(n_hosts: int, pool_details: dict[str, dict]) -> tuple[list[list[str]], list[list[str]]]:
    """(before, undo): while a leaving host's data moves to the n_hosts that
    stay, a pool keeps at most n_hosts copies; one whose min_size is above
    that would stop serving I/O, so its min_size is lowered first (before),
    and put back (undo) if the drain does not finish. Sizes are not touched."""
    before: list[list[str]] = []
    undo: list[list[str]] = []
    for name, pool in _replicated(pool_details):
        size, min_size = pool.get("size", 0), pool.get("min_size", 0)
        kept = max(1, min(size, n_hosts))
        if min_size > kept:
            before.append(["osd", "pool", "set", name, "min_size", str(kept)])
            undo.append(["osd", "pool", "set", name, "min_size", str(min_size)])
    return before, undo


def fit_pools(n_hosts: int, pool_details: dict[str, dict]) -> tuple[list[list[str]], list[list[str]]]:
    """(fit, undo): the `ceph` commands that give the pools with more copies
    than n_hosts hosts can hold fewer (down to one, after Ceph's
    mon_allow_pool_size_one), and those that put them back. `cluster remove`
    fits the pools once the leaving host's OSDs are out: CRUSH then keeps the
    copies on the hosts that stay, which already hold them (a pool has more
    copies than the staying hosts only when every host holds one), and the
    leaving OSDs can empty only once the pools fit (Ceph deletes a stray copy
    only when its placement group is clean)."""
    size, min_size = copies(n_hosts)
    fit: list[list[str]] = []
    undo: list[list[str]] = []
    for name, pool in _replicated(pool_details):
        if pool.get("size", 0) > size:
            fit += [["osd", "pool", "set", name, "size", str(size)] + (["--yes-i-really-mean-it"] if size == 1 else []),
                    ["osd", "pool", "set", name, "min_size", str(min_size)]]
            undo += [["osd", "pool", "set", name, "size", str(pool["size"])],
                     ["osd", "pool", "set", name, "min_size", str(pool.get("min_size", min_size))]]
    if fit and size == 1:
        fit.insert(0, ["config", "set", "mon", "mon_allow_pool_size_one", "true"])
        undo.append(["config", "rm", "mon", "mon_allow_pool_size_one"])
    return fit, undo


def shrink_settings(n_hosts: int) -> list[list[str]]:
    """The `ceph config` commands for a cluster shrunk to n_hosts hosts, once
    the leaving one is gone: new pools default to as many copies as there are
    hosts, and with one host left the single-node settings come back."""
    if n_hosts <= 1:
        return [["config", "set", who, option, value] for who, option, value in SINGLE_NODE_SETTINGS]
    return _new_pool_defaults(n_hosts)
