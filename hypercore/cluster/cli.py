"""`hypercore cluster ...`: join tokens, the cluster's status, removing a node."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

from hypercore.errors import UserError

from . import approval, diskless, grant, remove, status
from .token import decode, when

PUBLIC = "{token,approve,sweep-tokens,status,remove}"
CEPH_CONF = Path("/etc/ceph/ceph.conf")


def register(groups, common: argparse.ArgumentParser) -> None:
    """Add the `cluster` group to the hypercore parser (called from hypercore.cli.build_parser)."""
    g = groups.add_parser("cluster", help="the Ceph cluster: join tokens for new nodes, status")
    sub = g.add_subparsers(dest="verb", required=True, metavar=PUBLIC)
    s = sub.add_parser("token", parents=[common],
                       help="print a join token for a new node's answer file (ceph.join.token)")
    s.add_argument("--ttl", default="1h", help="how long it is valid: 30m, 1h, 2d (default 1h)")
    s.add_argument("--revoke", metavar="ENTITY", help="delete a join identity now (client.join-...)")
    s.add_argument("--list", action="store_true", help="the join identities made on this node")
    s = sub.add_parser("approve", parents=[common],
                       help="let in a machine that asked to join over the network: compare CODE with the one "
                            "on its console")
    s.add_argument("code", metavar="CODE", nargs="?", help="the code the machine shows (ABCD-EF23)")
    s.add_argument("--deny", action="store_true", help="answer no: the machine stops its join")
    s.add_argument("--list", action="store_true", help="the requests waiting on this node")
    sub.add_parser("sweep-tokens", parents=[common],
                   help="delete the join identities whose token expired (run by a timer)")
    s = sub.add_parser("status", parents=[common], help="nodes, monitors, OSDs, pools and health")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("remove", parents=[common],
                       help="take NODE out of the cluster: drain its OSDs first, refuse what would lose data")
    s.add_argument("node", metavar="NODE")
    s.add_argument("--yes", action="store_true", help="do it (without: show the plan, change nothing)")


def dispatch(state, a) -> int:
    root = state.root
    if a.verb == "token":
        if a.revoke and a.list:
            raise UserError("--revoke and --list go alone", hint="run them one at a time")
        if a.revoke:
            print(grant.revoke(root, a.revoke))
        elif a.list:
            rows = grant.listing(root)
            if not rows:
                print("no join tokens made on this node")
            for entity, expires, expired in rows:
                print(f"{entity:<28} {'expired' if expired else 'expires'} {when(expires)}")
        else:
            ttl = grant.parse_ttl(a.ttl)
            tok = grant.create(root, ttl)
            print(tok)
            print(f"{decode(tok).entity}, valid until {when(decode(tok).expires)}: put the token in the new "
                  "node's answer file as ceph.join.token (the token is a secret)", file=sys.stderr)
    elif a.verb == "approve":
        approve(root, a)
    elif a.verb == "sweep-tokens":
        gone = grant.sweep(root)
        print("\n".join(f"{e} removed (expired)" for e in gone) or "no expired join token")
    elif a.verb == "remove":
        plan = remove.plan(a.node, socket.gethostname().split(".")[0], remove.gather())
        print(plan.describe(), flush=True)
        if not a.yes:
            print("nothing changed: run again with --yes to do it")
            return 0
        remove.execute(plan)
    elif a.verb == "status":
        s = status.summary(status.gather())
        print(json.dumps(s, indent=2) if a.json else status.render(s), end="\n" if a.json else "")
    return 0


def _describe(req: approval.Request) -> str:
    what = "diskless node" if req.kind == "diskless" else "node"
    return (f"{req.code}  {what} {req.name} from {req.address}, key {approval.fingerprint(req.key)}, "
            f"asked {when(req.received)}")


def approve(root, a) -> None:
    """hypercore cluster approve [CODE] [--deny] [--list]."""
    store = approval.STORE
    if a.list or not a.code:
        if a.deny:
            raise UserError("--deny needs the CODE of the request to deny", hint="hypercore cluster approve --list")
        rows = approval.pending(store)
        print("\n".join(_describe(r) for r in rows) if rows else f"no join request is waiting on this node ({store})")
        return
    req = approval.find(store, a.code)
    if a.deny:
        approval.deny(store, req)
        print(f"denied: {_describe(req)}")
        return
    if req.kind == "diskless":
        material = diskless.material(req.name, CEPH_CONF.read_text())
        given = f"{diskless.entity(req.name)}, RBD namespace {diskless.POOL}/{req.name} only"
    else:
        material = {"kind": "node", "token": grant.create(root, 3600)}
        given = f"a join token for {decode(material['token']).entity} (valid 1 h, used once)"
    approval.approve(store, req, material)
    print(f"approved: {_describe(req)}\n  it gets, sealed to its key: {given}")
