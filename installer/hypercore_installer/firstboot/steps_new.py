"""Steps that make the monitor and the manager of a new cluster (and decide
the facts every mode needs). Each step can run again after a crash: it looks
at what is already there and does only what is missing."""

from __future__ import annotations

import json
import os
import time
import uuid

from hypercore.errors import UserError

from . import network, render
from .cluster import mgr_active, mon_in_quorum
from .context import Context

ADDRESS_TIMEOUT = 300
MON_TIMEOUT = 300
MGR_TIMEOUT = 420


def short_name(hostname: str) -> str:
    return hostname.split(".")[0]


# --- facts -----------------------------------------------------------------

def _address(ctx: Context) -> network.Address:
    net = ctx.answers.get("network") or {"mode": "dhcp"}

    def probe():
        links = json.loads(ctx.host.run(["ip", "-j", "address", "show"]).stdout or "[]")
        return network.pick_address(links, net), network.describe_interfaces(links)

    want = net.get("interface") or "en*/eth*"
    return ctx.wait(f"an address on {want} ({net.get('mode', 'dhcp')})", probe,
                    timeout=ADDRESS_TIMEOUT, interval=3,
                    hint="check the cable and the DHCP server (networkctl status), or the "
                         "network section of /etc/hypercore/answers.yaml")


def decide_facts(ctx: Context) -> None:
    """Mode, host name, this node's address and network, the cluster fsid:
    decided once and kept in facts.json, so a resumed run uses the same."""
    f, ceph = ctx.facts, ctx.answers["ceph"]
    f.setdefault("mode", ceph["mode"])
    if f["mode"] != ceph["mode"]:
        raise UserError(f"answers.yaml now says ceph.mode: {ceph['mode']}, but this node's bootstrap "
                        f"started as {f['mode']}",
                        hint=f"put ceph.mode back to {f['mode']}, or start over: rm -r {ctx.paths.state_dir}")
    f.setdefault("host", short_name(ctx.answers["hostname"]))
    running = short_name(ctx.host.hostname())
    if running != f["host"]:
        ctx.say(f"    note: the running host name is {running}; Ceph uses {f['host']} (answers.yaml)")
    if "ip" not in f:
        addr = _address(ctx)
        f.update(interface=addr.interface, ip=addr.ip, prefixlen=addr.prefixlen,
                 network=addr.network, network_mode=(ctx.answers.get("network") or {}).get("mode", "dhcp"))
    if f["mode"] == "new":
        f.setdefault("fsid", ceph.get("fsid") or str(uuid.uuid4()))
    elif ceph.get("fsid"):
        f.setdefault("fsid", ceph["fsid"])
    f.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    ctx.save_facts()
    ctx.say(f"    host {f['host']}, address {f['ip']}/{f['prefixlen']} on {f['interface']}"
            + (f", fsid {f['fsid']}" if f.get("fsid") else ""))


# --- ceph.conf and keyrings ---------------------------------------------------

def write_conf(ctx: Context) -> None:
    f = ctx.facts
    ctx.host.makedirs(os.path.dirname(ctx.paths.ceph_conf), 0o755)
    ctx.host.write_file(ctx.paths.ceph_conf, render.ceph_conf_new(f["fsid"], f["host"], f["ip"], f["network"]),
                        0o644)


def mon_store_done(ctx: Context) -> bool:
    return ctx.host.exists(os.path.join(ctx.paths.mon_dir(ctx.name), "done"))


def _known_keys(ctx: Context) -> dict[str, str]:
    p = ctx.paths
    keys: dict[str, str] = {}
    for path in (p.mon_seed_keyring, os.path.join(p.mon_dir(ctx.name), "keyring"), p.admin_keyring,
                 p.bootstrap_osd_keyring, os.path.join(p.mgr_dir(ctx.name), "keyring")):
        keys.update(render.parse_keyring(ctx.host.read_text(path) or ""))
    return keys


def make_keyrings(ctx: Context) -> None:
    """Keys of mon., client.admin, client.bootstrap-osd and mgr.HOST: made
    once (a resumed run reuses the ones on disk), each file 0600, owned by
    ceph where a daemon reads it."""
    p, name = ctx.paths, ctx.name
    keys = _known_keys(ctx)
    entities = {"mon.": render.MON_CAPS, "client.admin": render.ADMIN_CAPS,
                "client.bootstrap-osd": render.BOOTSTRAP_OSD_CAPS, f"mgr.{name}": render.MGR_CAPS}
    for entity in entities:
        keys.setdefault(entity, render.new_key())

    def ring(*names):
        return render.keyring([(n, keys[n], entities[n]) for n in names])

    ctx.host.write_file(p.admin_keyring, ring("client.admin"), 0o600, secret=True)
    ctx.host.makedirs(os.path.dirname(p.bootstrap_osd_keyring), 0o755)
    ctx.host.write_file(p.bootstrap_osd_keyring, ring("client.bootstrap-osd"), 0o600, secret=True)
    write_mgr_keyring(ctx, ring(f"mgr.{name}"))
    if not mon_store_done(ctx):
        # ceph-mon --mkfs imports these into the new store's auth database.
        ctx.host.write_file(p.mon_seed_keyring, ring(*entities), 0o600, secret=True)
        ctx.host.chown(p.mon_seed_keyring, "ceph")


def write_mgr_keyring(ctx: Context, text: str) -> None:
    """The manager's keyring in its data directory, both owned by ceph (0750, 0600)."""
    d = ctx.paths.mgr_dir(ctx.name)
    ctx.host.makedirs(d, 0o750)
    ctx.host.chown(d, "ceph")
    ctx.host.write_file(os.path.join(d, "keyring"), text, 0o600, secret=True)
    ctx.host.chown(os.path.join(d, "keyring"), "ceph")


# --- monitor ------------------------------------------------------------------

def mkfs_mon(ctx: Context, seed) -> None:
    """This node's monitor store, unless a complete one is there (its `done`
    file; a half-made one is removed first). seed() puts the monitor map and
    the seed keyring in place; ceph-mon --mkfs runs as user ceph. Then both
    go: the store holds them."""
    p, name = ctx.paths, ctx.name
    d = p.mon_dir(name)
    if not mon_store_done(ctx):
        if ctx.host.exists(d):
            ctx.say(f"    removing the incomplete monitor store {d} (an earlier run stopped in it)")
            ctx.host.rmtree(d)
        seed()
        ctx.host.makedirs(d, 0o750)
        ctx.host.chown(d, "ceph")
        ctx.host.run(["ceph-mon", "--cluster", "ceph", "--mkfs", "-i", name, "--monmap", p.monmap,
                      "--keyring", p.mon_seed_keyring, "--setuser", "ceph", "--setgroup", "ceph"],
                     timeout=300)
        ctx.host.write_file(os.path.join(d, "done"), "", 0o644)
        ctx.host.chown(os.path.join(d, "done"), "ceph")
    ctx.host.remove(p.mon_seed_keyring)
    ctx.host.remove(p.monmap)


def make_mon_store(ctx: Context) -> None:
    """monmaptool --create --addv (msgr2 and v1) with this node alone, then mkfs_mon."""
    p, f, name = ctx.paths, ctx.facts, ctx.name

    def seed():
        if not ctx.host.exists(p.mon_seed_keyring):
            raise UserError(f"the monitor's seed keyring {p.mon_seed_keyring} is missing",
                            hint=f"make it again: rm {ctx.journal.dir}/keyrings.done")
        ctx.host.run(["monmaptool", "--create", "--clobber", "--enable-all-features", "--fsid", f["fsid"],
                      "--addv", name, render.mon_addrvec(f["ip"]), p.monmap])
        ctx.host.chown(p.monmap, "ceph")

    mkfs_mon(ctx, seed)


def _start(ctx: Context, unit: str) -> None:
    ctx.host.run(["systemctl", "reset-failed", unit], ok=(0, 1, 5))
    ctx.host.run(["systemctl", "enable", "--now", unit], timeout=300)


def start_mon(ctx: Context) -> None:
    _start(ctx, f"ceph-mon@{ctx.name}")
    asok = ctx.paths.mon_asok(ctx.name)

    def probe():
        status = ctx.ceph.admin_socket(asok, "mon_status")
        return mon_in_quorum(status), (status or {}).get("state", "no answer on its admin socket")

    ctx.wait("the monitor to form a quorum", probe, timeout=MON_TIMEOUT, interval=3,
             hint=f"see journalctl -u ceph-mon@{ctx.name}")


def configure_cluster(ctx: Context, settings) -> None:
    """msgr2 on (the monmap already has v2 addresses; this makes sure), then
    the cluster settings into the monitors' database in one call."""
    ctx.ceph.call("mon", "enable-msgr2")
    path = os.path.join(ctx.journal.dir, "cluster-settings.conf")
    ctx.host.write_file(path, render.settings_conf(settings), 0o600)
    out = ctx.ceph.call("config", "assimilate-conf", "-i", path).stdout
    refused = render.leftover_options(out or "")
    if refused:
        raise UserError(f"the monitors did not take these settings: {', '.join(refused)}",
                        hint=f"set them by hand (ceph config set), see {path}")


def configure_new_cluster(ctx: Context) -> None:
    configure_cluster(ctx, render.CLUSTER_SETTINGS + render.SINGLE_NODE_SETTINGS)


# --- manager ------------------------------------------------------------------

def start_mgr(ctx: Context) -> None:
    """Start the manager; the OSDs are made while it loads (wait_mgr)."""
    _start(ctx, f"ceph-mgr@{ctx.name}")


def wait_mgr(ctx: Context) -> None:
    def probe():
        stat = ctx.ceph.try_json("mgr", "stat")
        return mgr_active(stat), "available" if stat and stat.get("available") else "not available yet"

    active = ctx.wait("a manager to become active", probe, timeout=MGR_TIMEOUT, interval=5,
                      hint=f"see journalctl -u ceph-mgr@{ctx.name}")
    ctx.say(f"    active manager: {active}")
