"""`hypercore cluster ...`: join tokens, the cluster's status, removing a node."""

from __future__ import annotations

import argparse
import json
import socket
import sys

from hypercore.errors import UserError

from . import grant, remove, status
from .token import decode, when

PUBLIC = "{token,sweep-tokens,status,remove}"


def register(groups, common: argparse.ArgumentParser) -> None:
    """Add the `cluster` group to the hypercore parser (called from hypercore.cli.build_parser)."""
    g = groups.add_parser("cluster", help="the Ceph cluster: join tokens for new nodes, status")
    sub = g.add_subparsers(dest="verb", required=True, metavar=PUBLIC)
    s = sub.add_parser("token", parents=[common],
                       help="print a join token for a new node's answer file (ceph.join.token)")
    s.add_argument("--ttl", default="1h", help="how long it is valid: 30m, 1h, 2d (default 1h)")
    s.add_argument("--revoke", metavar="ENTITY", help="delete a join identity now (client.join-...)")
    s.add_argument("--list", action="store_true", help="the join identities made on this node")
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
