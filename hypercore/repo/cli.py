"""`hypercore repo ...`: the golden-image repository's command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from hypercore import storage
from hypercore.errors import UserError
from hypercore.repo import config as config_mod
from hypercore.repo import access, authorize, btrfs, holds, layout, netroot, serve, store, transfer
from hypercore.repo.transport import COMPRESSORS
from hypercore.sizes import human

PUBLIC = "{add,list,replicate,pull,prune,verify,peers,authorize,publish}"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _sha256(text: str) -> str:
    if not SHA256.fullmatch(text):
        raise argparse.ArgumentTypeError("expected 64 hex digits")
    return text


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo-dir", help="the repository (default $HYPERCORE_REPO_DIR or /var/lib/hypercore/images/repo)")
    p.add_argument("--config", help="peers and role (default $HYPERCORE_REPO_CONFIG or /etc/hypercore/repo.yaml)")


def register(groups, common: argparse.ArgumentParser) -> None:
    """Add the `repo` group to the hypercore parser (called from hypercore.cli.build_parser)."""
    mine = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    _options(mine)
    g = groups.add_parser("repo", help="golden-image repository: versioned BTRFS snapshots, replicated")
    _options(g)
    sub = g.add_subparsers(dest="verb", required=True, metavar=PUBLIC)

    def leaf(name, **kw):
        return sub.add_parser(name, parents=[common, mine], **kw)

    s = leaf("add", help="store FILE as the next version of NAME (a read-only snapshot with a manifest)")
    s.add_argument("name")
    s.add_argument("file")
    s = leaf("list", help="names and versions held here")
    s.add_argument("name", nargs="?")
    s.add_argument("--json", action="store_true")
    for verb, where, helptext in (("replicate", "--to", "send the versions PEER lacks (incremental when possible)"),
                                  ("pull", "--from", "fetch the versions this node lacks from PEER (a cache)")):
        s = leaf(verb, help=helptext)
        s.add_argument("ref", metavar="NAME[@VERSION]")
        s.add_argument(where, dest="peer", required=True, metavar="PEER")
        s.add_argument("--compress", choices=COMPRESSORS, default="zstd", help="stream compression (default zstd)")
        s.add_argument("--full", action="store_true", help="full sends only, no parent")
        s.add_argument("--json", action="store_true", help="one JSON object per version sent")
        if verb == "replicate":
            s.add_argument("--bwlimit", type=_positive, metavar="KIB_PER_S", help="limit the rate on the wire")
            s.add_argument("--stream-file", help=argparse.SUPPRESS)  # test hook: send this file as the stream
    s = leaf("prune", help="delete all but the newest N versions (never one in use)")
    s.add_argument("name")
    s.add_argument("--keep", type=_positive, required=True, metavar="N")
    s = leaf("verify", help="recompute the checksums of a version (all versions without @VERSION)")
    s.add_argument("ref", metavar="NAME[@VERSION]")
    s = leaf("peers", help="each peer: reachable over SSH, and the versions it holds")
    s.add_argument("--json", action="store_true")
    s = leaf("authorize", help="let a peer's replication key (as its `repo peers` prints it) replicate here")
    s.add_argument("key", metavar="'TYPE BASE64 [COMMENT]'")
    s.add_argument("--peer", metavar="PEER",
                   help="the key is this peer's (repo.yaml): it may do what the peer's role allows (a cache only pulls)")
    s.add_argument("--revoke", action="store_true", help="remove that key instead")
    s = leaf("publish", help="a version as a golden image for the VM services (--as), or as a netboot root")
    s.add_argument("ref", metavar="NAME[@VERSION]")
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument("--as", dest="image", metavar="IMAGE", help="import it as the golden image IMAGE")
    how.add_argument("--netboot", action="store_true",
                     help="serve it (a squashfs) as a root for network-boot clients: an entry of the menu")
    s.add_argument("--unpublish", action="store_true", help="with --netboot: stop serving it")
    s.add_argument("--http-root", metavar="DIR",
                   help="the netboot HTTP root (default $HYPERCORE_NETBOOT_HTTP_ROOT or /var/lib/hypercore/netboot)")
    # Internal: what the other side of ssh runs.
    s = leaf("receive")
    s.add_argument("name")
    s.add_argument("--version", required=True)
    s.add_argument("--parent")
    s.add_argument("--compress", choices=COMPRESSORS, required=True)
    s.add_argument("--manifest-sha256", type=_sha256, required=True)
    s = leaf("_send")
    s.add_argument("name")
    s.add_argument("--version", required=True)
    s.add_argument("--parent")
    s.add_argument("--compress", choices=COMPRESSORS, required=True)
    s = leaf("_inventory")
    s.add_argument("name", nargs="?")
    s = leaf("serve-ssh")  # the forced command of the peers' keys (serve.py)
    s.add_argument("--peer", help=argparse.SUPPRESS)  # the key's peer in repo.yaml: its role's verbs only


def dispatch(state, a) -> int:
    repo = layout.resolve(a.repo_dir)
    cfg = lambda: config_mod.load(a.config)  # noqa: E731  (read only by the verbs that need it)
    v = a.verb
    if v == "add":
        print(store.add(repo, layout.image_name(a.name), Path(a.file)))
    elif v == "list":
        return _list(repo, layout.image_name(a.name) if a.name else None, a.json)
    elif v in ("replicate", "pull"):
        return _transfer(repo, cfg(), a)
    elif v == "prune":
        name = layout.image_name(a.name)
        print("\n".join(store.prune(repo, name, a.keep, lambda ver: holds.users(repo, state, name, ver))))
    elif v == "verify":
        name, ver = layout.split_ref(a.ref)
        for one in [repo.require_version(name, ver)] if ver else repo.versions(name) or [repo.require_version(name, None)]:
            print(store.verify(repo, name, one))
    elif v == "peers":
        return _peers(cfg(), a.json)
    elif v == "publish":
        return _publish(repo, state, a)
    elif v == "authorize":
        conf = cfg()
        print(authorize.authorize(a.key, not a.revoke, *authorize.locations(conf.path), peer=a.peer, cfg=conf))
    elif v == "receive":
        name, ver = layout.image_name(a.name), layout.version(a.version)
        parent = layout.version(a.parent) if a.parent else None
        msg, n = transfer.receive(repo, name, ver, parent, a.compress, a.manifest_sha256, sys.stdin.buffer)
        print(f"{msg} ({human(n)} on the wire)")
    elif v == "_send":
        name, ver = layout.image_name(a.name), repo.require_version(layout.image_name(a.name), layout.version(a.version))
        parent = repo.require_version(name, layout.version(a.parent)) if a.parent else None
        transfer.send_to_stdout(repo, name, ver, parent, a.compress)
    elif v == "serve-ssh":
        from hypercore.cli import build_parser
        verbs, who = serve.peer_access(cfg(), getattr(a, "peer", None))
        argv = serve.allowed_argv(os.environ.get("SSH_ORIGINAL_COMMAND"), str(layout.resolve(None).root),
                                  verbs, who)
        return dispatch(state, build_parser().parse_args(argv))
    elif v == "_inventory":
        inv = transfer.local_inventory(repo, cfg().role, layout.image_name(a.name) if a.name else None)
        print(json.dumps(inv))
    return 0


def _publish(repo, state, a) -> int:
    name, ver = layout.split_ref(a.ref)
    ver = repo.require_version(name, ver)
    if not a.netboot:
        if a.unpublish:
            raise UserError("--unpublish goes with --netboot",
                            hint=f"a golden image is removed with: hypercore image delete {a.image}")
        print(holds.publish(repo, state, name, ver, a.image, storage.choose(a.storage)))
        return 0
    root = netroot.http_root(a.http_root)
    menu = netroot.menu(root)           # read and checked before anything changes
    if a.unpublish:
        print(netroot.unpublish(repo, name, ver, root))
    else:
        print(netroot.publish(repo, name, ver, root))
    print(menu.write())
    return 0


def _list(repo, name, as_json) -> int:
    rows = store.listing(repo, name)
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no versions of {name}" if name else f"the repository {repo.root} is empty "
              "(add an image: hypercore repo add NAME FILE)")
    for r in [] if as_json else rows:
        print(f"{r['name'] + '@' + r['version']:<28} {r['created']:<20} {human(r['size']):>9}  {r['image']}")
    return 0


def _transfer(repo, cfg, a) -> int:
    peer = cfg.peer(a.peer)
    name, only = layout.split_ref(a.ref)
    remote = transfer.remote_inventory(peer, name)["images"].get(name, {})
    if a.verb == "replicate":
        ours = store.inventory(repo, name)[name]
        if not ours:
            repo.require_version(name, None)
        if only:
            repo.require_version(name, only)
        steps = transfer.plan(name, ours, remote, only, a.full)
    else:
        if not remote or (only and only not in remote):
            raise UserError(f"peer {peer.name} holds no {a.ref}",
                            hint="see what it holds: hypercore repo peers")
        btrfs.require_btrfs(repo.root)
        steps = transfer.plan(name, remote, store.inventory(repo, name)[name], only, a.full)
    arrow = f"-> {peer.name}" if a.verb == "replicate" else f"<- {peer.name}"
    if not steps:
        print(json.dumps({"name": name, "sent": []}) if a.json else f"{name}: nothing to send ({arrow} is up to date)")
        return 0
    for step in steps:
        if a.verb == "replicate":
            n, secs = transfer.send_version(repo, peer, name, step, a.compress,
                                            a.bwlimit * 1024 if a.bwlimit else None,
                                            Path(a.stream_file) if a.stream_file else None)
        else:
            n, secs = transfer.receive_from(repo, peer, name, step, a.compress, remote[step.version])
        if a.json:
            print(json.dumps({"name": name, "version": step.version, "parent": step.parent,
                              "compress": a.compress, "bytes": n, "seconds": round(secs, 3)}))
        else:
            print(f"{name}@{step.version} {arrow}: {transfer.describe(step)}, {human(n)} on the wire "
                  f"({a.compress}) in {secs:.1f} s")
        sys.stdout.flush()
    return 0


def _own_key(cfg) -> str | None:
    """This node's replication public key: the .pub of the peers' identity_file (the installer's key)."""
    keys = [p.identity_file for p in cfg.peers if p.identity_file] or [access.KEY]
    try:
        return Path(keys[0] + ".pub").read_text().strip()
    except OSError:
        return None


def _peers(cfg, as_json) -> int:
    key = None if as_json else _own_key(cfg)
    if key:
        print(f"this node's replication key (for the other appliances' repo.authorized_keys):\n  {key}")
    if not cfg.peers:
        raise UserError(f"no peers configured in {cfg.path}",
                        hint="list them under 'peers:' (name, address user@host, port)")
    out, bad = [], 0
    for p in cfg.peers:
        row = {"name": p.name, "role": p.role, "address": p.address, "port": p.port}
        try:
            inv = transfer.remote_inventory(p, timeout=30)
            row.update(reachable=True, images=inv.get("images", {}))
        except UserError as e:
            row.update(reachable=False, error=e.message)
            bad += 1
        out.append(row)
    if as_json:
        print(json.dumps(out, indent=2))
    for r in [] if as_json else out:
        held = "; ".join(f"{n}: {' '.join(layout.sort_versions(vs))}" for n, vs in sorted(r.get("images", {}).items()))
        state = "reachable" if r["reachable"] else f"UNREACHABLE ({r['error']})"
        print(f"{r['name']:<16} {r['role']:<13} {r['address']}:{r['port']}  {state}"
              + (f"  {held or 'no images'}" if r["reachable"] else ""))
    return 1 if bad else 0
