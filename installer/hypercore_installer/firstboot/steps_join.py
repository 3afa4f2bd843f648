"""Steps of `ceph.mode: join`: this node adds its disks as OSDs to an
existing cluster (the monitors stay where they are).

The answers give either a join token (`ceph.join.token`, made by `hypercore
cluster token`: the monitors, the fsid and a short-lived identity whose caps
allow exactly the commands below) or, the old way, the monitors' addresses
and the client.admin key (`mon_hosts`, `key`). With them the node checks the
fsid, fetches the client.bootstrap-osd keyring, creates its OSDs (steps_osd),
and then, now that the cluster has more than one host, undoes the
single-node decisions of the first node (render.SINGLE_NODE_SETTINGS): pools
get a per-host CRUSH rule and more copies, and POOL_NO_REDUNDANCY warns
again. No OSD is created before the monitors accepted the key."""

from __future__ import annotations

import time

from hypercore.cluster import token as tokmod
from hypercore.errors import UserError

from . import render
from .cluster import hosts_with_osds, pools
from .context import Context

HOST_RULE = "replicated_host"
REPLICATED = 1  # pg_pool_t::TYPE_REPLICATED in `ceph osd pool ls detail`


def join_token(ctx: Context) -> tokmod.Token | None:
    """The answers' join token, decoded (None: the old mon_hosts + key way)."""
    text = (ctx.answers["ceph"].get("join") or {}).get("token")
    return tokmod.decode(text) if text else None


def _where(ctx: Context) -> str:
    return "ceph.join.token" if join_token(ctx) else "ceph.mon_hosts and ceph.key"


def write_join_conf(ctx: Context) -> None:
    """ceph.conf naming the existing monitors, and the key (0600): the join
    identity's (checked first: not expired, same fsid), or the admin's."""
    f, ceph = ctx.facts, ctx.answers["ceph"]
    tok = join_token(ctx)
    if tok:
        tokmod.check_fresh(tok, time.time())
        tokmod.check_fsid(tok, f.get("fsid"))
        f["fsid"], f["ceph_name"] = tok.fsid, tok.entity
        ctx.save_facts()
        mons, entity, key, caps = tok.mons, tok.entity, tok.key, {}
    else:
        mons, entity, key, caps = ceph["mon_hosts"], "client.admin", ceph["key"], render.ADMIN_CAPS
    ctx.host.makedirs("/".join(ctx.paths.ceph_conf.split("/")[:-1]), 0o755)
    ctx.host.write_file(ctx.paths.ceph_conf, render.ceph_conf_join(f.get("fsid"), mons, f.get("network")), 0o644)
    keyring = ctx.paths.admin_keyring if entity == "client.admin" else ctx.paths.client_keyring(entity)
    ctx.host.write_file(keyring, render.keyring([(entity, key, caps)]), 0o600, secret=True)


def contact_cluster(ctx: Context) -> None:
    """Ask the monitors for the fsid (must match the answers' or the token's),
    put it in ceph.conf, and fetch the client.bootstrap-osd keyring."""
    f = ctx.facts
    tok = join_token(ctx)
    mons = ", ".join(tok.mons if tok else ctx.answers["ceph"]["mon_hosts"])
    try:
        fsid = ctx.ceph.json("fsid")["fsid"]
    except Exception as e:
        what = "the join token" if tok else "the key from answers.yaml"
        raise UserError(f"the monitors ({mons}) refused {what} or cannot be reached: {str(e).splitlines()[-1]}",
                        hint=(f"check {_where(ctx)} in /etc/hypercore/answers.yaml"
                              + (" (revoked or swept? make a new one: hypercore cluster token)" if tok else "")
                              + " and that this node reaches the monitors (ports 3300 and 6789)")) from None
    if f.get("fsid") and f["fsid"] != fsid:
        raise UserError(f"the monitors at {mons} belong to cluster {fsid}, not {f['fsid']} "
                        f"({'the join token' if tok else 'ceph.fsid'})",
                        hint=f"correct {_where(ctx)} (or ceph.fsid) in /etc/hypercore/answers.yaml")
    f["fsid"] = fsid
    ctx.save_facts()
    write_join_conf(ctx)
    text = ctx.ceph.call("auth", "get", "client.bootstrap-osd", secret=True).stdout
    if "client.bootstrap-osd" not in render.parse_keyring(text):
        raise UserError("the cluster returned no client.bootstrap-osd key",
                        hint="on the existing cluster: ceph auth get client.bootstrap-osd")
    ctx.host.makedirs("/".join(ctx.paths.bootstrap_osd_keyring.split("/")[:-1]), 0o755)
    ctx.host.write_file(ctx.paths.bootstrap_osd_keyring, text, 0o600, secret=True)


def redundancy_plan(n_hosts: int, pool_details: dict[str, dict], rule_id: int | None) -> list[list[str]]:
    """The `ceph` commands that take a cluster grown to n_hosts hosts out of
    single-node mode. Pure. Pools with fewer copies than hosts allow (at
    most 3) get the per-host rule and more copies; the single-node settings
    are removed (POOL_NO_REDUNDANCY warns again); with two hosts new pools
    default to 2 copies. Nothing when there is still one host."""
    if n_hosts < 2:
        return []
    size = min(3, n_hosts)
    min_size = 2 if size >= 3 else 1
    cmds: list[list[str]] = []
    for name, pool in sorted(pool_details.items()):
        if pool.get("type", REPLICATED) != REPLICATED or pool.get("size", 0) >= size:
            continue
        cmds += [["osd", "pool", "set", name, "crush_rule", HOST_RULE],
                 ["osd", "pool", "set", name, "size", str(size)],
                 ["osd", "pool", "set", name, "min_size", str(min_size)]]
    cmds += [["config", "rm", who, option] for who, option, _ in render.SINGLE_NODE_SETTINGS]
    if size < 3:
        cmds += [["config", "set", "global", "osd_pool_default_size", str(size)],
                 ["config", "set", "global", "osd_pool_default_min_size", str(min_size)]]
    if rule_id is not None:
        cmds.append(["config", "set", "global", "osd_pool_default_crush_rule", str(rule_id)])
    return cmds


def grow_redundancy(ctx: Context) -> None:
    ceph = ctx.ceph
    hosts = hosts_with_osds(ceph.json("osd", "tree"))
    details = pools(ceph.json("osd", "pool", "ls", "detail"))
    if len(hosts) < 2:
        ctx.say(f"    the cluster has OSDs on {len(hosts)} host(s): pool sizes stay as they are")
        return
    ceph.call("osd", "crush", "rule", "create-replicated", HOST_RULE, "default", "host")
    rule_id = ceph.json("osd", "crush", "rule", "dump", HOST_RULE).get("rule_id")
    for argv in redundancy_plan(len(hosts), details, rule_id):
        ceph.call(*argv)
    ctx.say(f"    {len(hosts)} hosts with OSDs ({', '.join(hosts)}): pools keep "
            f"{min(3, len(hosts))} copies on different hosts")
