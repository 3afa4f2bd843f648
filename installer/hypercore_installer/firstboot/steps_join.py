"""Steps of `ceph.mode: join`: this node becomes a member of an existing
cluster like the first one -- a monitor while the cluster has fewer than
three, a standby manager, its disks as OSDs, and the admin key.

The answers give either a join token (`ceph.join.token`, made by `hypercore
cluster token`: the monitors, the fsid and a short-lived identity that may
only read the fsid and fetch the admin key; used once, then deleted) or, the
old way, the monitors' addresses and the client.admin key (`mon_hosts`,
`key`). With them the node checks the fsid, refuses a name the cluster
already has, adds its monitor and manager, creates its OSDs (steps_osd), and
then, now that the cluster has more than one host, undoes the single-node
decisions of the first node (hypercore.cluster.sizing): pools get a
per-host CRUSH rule and more copies, and POOL_NO_REDUNDANCY warns again.
Nothing is added to the cluster before the monitors accepted the key."""

from __future__ import annotations

import os
import time

from hypercore.cluster import approval
from hypercore.cluster import token as tokmod
from hypercore.cluster.grant import ENOENT, mon_addresses
from hypercore.cluster.sizing import HOST_RULE, grow_plan
from hypercore.errors import UserError

from . import monitors, render, steps_new
from .cluster import hosts_with_osds, mon_names, pools
from .context import Context

MAX_MONS = 3  # a joining node runs a monitor while the cluster has fewer


def join_request(ctx: Context) -> str | None:
    """ceph.join.request: the cluster node to ask (None: a token or mon_hosts + key in the answers)."""
    return (ctx.answers["ceph"].get("join") or {}).get("request")


def join_token(ctx: Context) -> tokmod.Token | None:
    """The join token: the answers', or the one an operator's approval gave
    (None: the old mon_hosts + key way, or not approved yet)."""
    text = (ctx.answers["ceph"].get("join") or {}).get("token")
    if not text and join_request(ctx):
        text = ctx.host.read_text(ctx.paths.approved_token)
    return tokmod.decode(text) if text else None


def ask_to_join(ctx: Context) -> None:
    """With ceph.join.request: ask the cluster node there and wait until an
    operator approves this node's code (hypercore cluster approve CODE); the
    join token comes sealed to this node's own key (approval.py). Nothing is
    asked again once a token is here."""
    url = join_request(ctx)
    if not url or ctx.host.exists(ctx.paths.approved_token):
        return
    keys = approval.Keys.load_or_create(ctx.paths.join_request_key)
    ctx.facts["join_request"] = {"code": keys.code, "fingerprint": approval.fingerprint(keys.public), "url": url}
    ctx.save_facts()
    material = approval.ask(url, ctx.name.lower(), "node", keys, say=lambda line: ctx.say("    " + line),
                            sleep=ctx.host.sleep, clock=ctx.host.monotonic)
    try:
        tokmod.decode(material.get("token") or "")
    except UserError as e:
        raise UserError(f"the approval of join request {keys.code} holds no usable join token ({e.message})",
                        hint="approve it from a node of the same Hypercore version") from None
    ctx.host.write_file(ctx.paths.approved_token, material["token"], 0o600, secret=True)
    ctx.say(f"    join request {keys.code} approved: the cluster sent a join token sealed to this node's key")


def forget_approval(ctx: Context) -> None:
    """The approved token was refused (expired, revoked): a restart asks anew, with a new key and code."""
    if join_request(ctx):
        if ctx.facts.get("ceph_name"):
            ctx.host.remove(ctx.paths.client_keyring(ctx.facts["ceph_name"]))
        ctx.host.remove(ctx.paths.approved_token)
        ctx.host.remove(ctx.paths.join_request_key)
        ctx.facts.pop("join_request", None)
        ctx.save_facts()


def join_mons(ctx: Context) -> list[str]:
    """The monitors the answers name: the token's, or ceph.mon_hosts."""
    tok = join_token(ctx)
    return tok.mons if tok else ctx.answers["ceph"]["mon_hosts"]


def join_source(ctx: Context) -> str:
    """Where the answers name the cluster (for messages)."""
    if join_request(ctx):
        return "the join token of the approved request (ceph.join.request)"
    return "ceph.join.token" if join_token(ctx) else "ceph.mon_hosts and ceph.key"


def write_join_conf(ctx: Context) -> None:
    """ceph.conf naming the existing monitors, and the key (0600): the join
    identity's (checked first: not expired, same fsid), or the admin's."""
    f, ceph = ctx.facts, ctx.answers["ceph"]
    ask_to_join(ctx)
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


def _admin_from_token(ctx: Context, tok: tokmod.Token) -> None:
    """The token's one use: fetch the admin key (this node becomes a full
    member, like the first), then delete the join identity."""
    text = ctx.ceph.call("auth", "get", "client.admin", secret=True).stdout
    if "client.admin" not in render.parse_keyring(text or ""):
        raise UserError("the cluster returned no client.admin key for the join token",
                        hint="make a new token on an existing node: hypercore cluster token")
    ctx.host.write_file(ctx.paths.admin_keyring, text, 0o600, secret=True)
    ctx.facts.pop("ceph_name", None)
    ctx.save_facts()
    ctx.ceph.call("auth", "rm", tok.entity, ok=(0, ENOENT))
    ctx.host.remove(ctx.paths.client_keyring(tok.entity))
    ctx.host.remove(ctx.paths.approved_token)
    ctx.host.remove(ctx.paths.join_request_key)
    ctx.say(f"    joined with the token; {tok.entity} is deleted (a token is used once)")


def _refuse_a_namesake(ctx: Context) -> None:
    """A node of this name already in the cluster (not from an earlier run of
    this join) is refused before anything is added."""
    mons = mon_names(ctx.ceph.json("mon", "dump"))
    hosts = hosts_with_osds(ctx.ceph.json("osd", "tree"))
    ours = ctx.host.exists(ctx.paths.mon_dir(ctx.name)) or bool(ctx.facts.get("osds"))
    if not ours and (ctx.name in mons or ctx.name in hosts):
        raise UserError(f"a node named {ctx.name} is already in the cluster "
                        f"({'a monitor' if ctx.name in mons else 'a host with OSDs'})",
                        hint=f"give this node another hostname in /etc/hypercore/answers.yaml, or remove the "
                             f"old one first on an existing node: hypercore cluster remove {ctx.name}")


def contact_cluster(ctx: Context) -> None:
    """Ask the monitors for the fsid (must match the answers' or the token's),
    put it in ceph.conf; with a token, fetch the admin key (then the token is
    spent); refuse a node name the cluster already has; fetch the
    client.bootstrap-osd keyring."""
    f = ctx.facts
    tok = join_token(ctx)
    if not tok or f.get("ceph_name"):
        # Until the cluster took this node, a rerun takes the answers as they are now (a new
        # token, a corrected monitor address or key): ceph.conf and the key are written anew.
        if tok and f.get("ceph_name") and f.get("ceph_name") != tok.entity:
            ctx.host.remove(ctx.paths.client_keyring(f["ceph_name"]))
        write_join_conf(ctx)
        tok = join_token(ctx)
    mon_hosts = join_mons(ctx)
    monitors.wait_for_one(ctx, mon_hosts, join_source(ctx))
    mons = ", ".join(mon_hosts)
    try:
        fsid = ctx.ceph.json("fsid")["fsid"]
    except Exception as e:
        what = "the join token" if tok else "the key from answers.yaml"
        if join_request(ctx):
            forget_approval(ctx)
            raise UserError(f"the monitors ({mons}) refused the approved join token or cannot be reached: "
                            f"{str(e).splitlines()[-1]}",
                            hint="check that this node reaches the monitors (ports 3300 and 6789); the token "
                                 "is dropped: the restart asks again with a new code to approve") from None
        raise UserError(f"the monitors ({mons}) refused {what} or cannot be reached: {str(e).splitlines()[-1]}",
                        hint=(f"check {join_source(ctx)} in /etc/hypercore/answers.yaml"
                              + (" (revoked, used or swept? make a new one: hypercore cluster token)" if tok else "")
                              + " and that this node reaches the monitors (ports 3300 and 6789)")) from None
    if f.get("fsid") and f["fsid"] != fsid:
        raise UserError(f"the monitors at {mons} belong to cluster {fsid}, not {f['fsid']} "
                        f"({'the join token' if tok else 'ceph.fsid'})",
                        hint=f"correct {join_source(ctx)} (or ceph.fsid) in /etc/hypercore/answers.yaml")
    f["fsid"] = fsid
    ctx.save_facts()
    if tok and f.get("ceph_name"):
        _admin_from_token(ctx, tok)
    _refuse_a_namesake(ctx)
    _write_conf(ctx, mon_hosts)
    text = ctx.ceph.call("auth", "get", "client.bootstrap-osd", secret=True).stdout
    if "client.bootstrap-osd" not in render.parse_keyring(text):
        raise UserError("the cluster returned no client.bootstrap-osd key",
                        hint="on the existing cluster: ceph auth get client.bootstrap-osd")
    ctx.host.makedirs("/".join(ctx.paths.bootstrap_osd_keyring.split("/")[:-1]), 0o755)
    ctx.host.write_file(ctx.paths.bootstrap_osd_keyring, text, 0o600, secret=True)


def _write_conf(ctx: Context, mons: list[str]) -> None:
    ctx.host.write_file(ctx.paths.ceph_conf, render.ceph_conf_join(ctx.facts.get("fsid"), mons,
                                                                   ctx.facts.get("network")), 0o644)


def add_mon(ctx: Context) -> None:
    """A monitor here while the cluster has fewer than MAX_MONS: its store
    made from the cluster's monmap and mon. key (ceph-mon --mkfs as user
    ceph), started; it joins the quorum by itself at its address in
    public_network. Then ceph.conf names every monitor."""
    p, ceph = ctx.paths, ctx.ceph
    names = mon_names(ceph.json("mon", "dump"))
    if not steps_new.mon_store_done(ctx) and len(names) >= MAX_MONS:
        ctx.say(f"    the cluster has {len(names)} monitors ({', '.join(names)}): none on this node")
        return

    def seed():
        ctx.host.makedirs(p.ceph_tmp, 0o755)
        ctx.host.chown(p.ceph_tmp, "ceph")
        ctx.host.write_file(p.mon_seed_keyring, ceph.call("auth", "get", "mon.", secret=True).stdout, 0o600,
                            secret=True)
        ctx.host.chown(p.mon_seed_keyring, "ceph")
        ceph.call("mon", "getmap", "-o", p.monmap)
        ctx.host.chown(p.monmap, "ceph")

    steps_new.mkfs_mon(ctx, seed)
    steps_new.start_mon(ctx)
    dump = ceph.json("mon", "dump")
    _write_conf(ctx, mon_addresses(dump))
    ctx.say(f"    monitors now: {', '.join(mon_names(dump))}")


def add_mgr(ctx: Context) -> None:
    """A standby manager here (the cluster's active one stays where it is)."""
    if not ctx.host.exists(os.path.join(ctx.paths.mgr_dir(ctx.name), "keyring")):
        caps = [x for svc, cap in sorted(render.MGR_CAPS.items()) for x in (svc, cap)]
        steps_new.write_mgr_keyring(ctx, ctx.ceph.call("auth", "get-or-create", f"mgr.{ctx.name}", *caps,
                                                       secret=True).stdout)
    steps_new.start_mgr(ctx)


def grow_redundancy(ctx: Context) -> None:
    ceph = ctx.ceph
    hosts = hosts_with_osds(ceph.json("osd", "tree"))
    details = pools(ceph.json("osd", "pool", "ls", "detail"))
    if len(hosts) < 2:
        ctx.say(f"    the cluster has OSDs on {len(hosts)} host(s): pool sizes stay as they are")
        return
    ceph.call("osd", "crush", "rule", "create-replicated", HOST_RULE, "default", "host")
    rule_id = ceph.json("osd", "crush", "rule", "dump", HOST_RULE).get("rule_id")
    for argv in grow_plan(len(hosts), details, rule_id):
        ceph.call(*argv)
    ctx.say(f"    {len(hosts)} hosts with OSDs ({', '.join(hosts)}): pools keep "
            f"{min(3, len(hosts))} copies on different hosts")
