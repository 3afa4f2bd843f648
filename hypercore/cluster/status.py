"""`hypercore cluster status`: nodes, monitors, OSDs, pools and health on one
screen. `gather` asks Ceph (four `ceph ... -f json` calls); `summary` and
`render` are pure, so they are tested from recorded JSON."""

from __future__ import annotations

import json

from hypercore.run import CommandError, run as run_cmd

QUERIES = {"osd_tree": ["osd", "tree"], "mon_dump": ["mon", "dump"],
           "pools": ["osd", "pool", "ls", "detail"], "health": ["health", "detail"]}


def gather(run=run_cmd, queries: dict[str, list[str]] = QUERIES) -> dict:
    """{name: the JSON answer of `ceph ARGS -f json`} for each of queries."""
    docs = {}
    for name, args in queries.items():
        argv = ["ceph", "--connect-timeout", "20", *args, "-f", "json"]
        out = run(argv, timeout=90).stdout
        try:
            docs[name] = json.loads(out or "null")
        except ValueError:
            raise CommandError(argv, 0, "", "the ceph CLI printed something that is not JSON") from None
    return docs


def _host(mon: dict) -> str:
    vec = ((mon.get("public_addrs") or {}).get("addrvec")) or []
    addr = vec[0]["addr"] if vec else (mon.get("public_addr") or mon.get("addr") or "?").split("/")[0]
    return addr.rsplit(":", 1)[0]


def summary(docs: dict) -> dict:
    """The status as plain data (also what --json prints)."""
    nodes = (docs.get("osd_tree") or {}).get("nodes") or []
    by_id = {n["id"]: n for n in nodes}
    hosts = []
    for n in nodes:
        if n.get("type") != "host":
            continue
        osds = [by_id[c] for c in n.get("children") or [] if c in by_id]
        hosts.append({"name": n["name"],
                      "osds": [{"id": o["id"], "up": o.get("status") == "up",
                                "in": float(o.get("reweight", 0)) > 0} for o in sorted(osds, key=lambda o: o["id"])]})
    hosts.sort(key=lambda h: h["name"])
    monmap = docs.get("mon_dump") or {}
    quorum = set(monmap.get("quorum") or [])
    mons = [{"name": m["name"], "address": _host(m), "in_quorum": m.get("rank") in quorum}
            for m in sorted(monmap.get("mons") or [], key=lambda m: m.get("rank", 0))]
    pools = [{"name": p["pool_name"], "size": p.get("size"), "min_size": p.get("min_size"),
              "pg_num": p.get("pg_num"), "type": "replicated" if p.get("type", 1) == 1 else "erasure"}
             for p in sorted(docs.get("pools") or [], key=lambda p: p["pool_name"])]
    health = docs.get("health") or {}
    checks = [{"code": code, "severity": c.get("severity", ""),
               "message": (c.get("summary") or {}).get("message", ""),
               "detail": [d.get("message", "") for d in c.get("detail") or []]}
              for code, c in sorted((health.get("checks") or {}).items())]
    osd_total = sum(len(h["osds"]) for h in hosts)
    return {"fsid": monmap.get("fsid"), "health": health.get("status", "unknown"), "checks": checks,
            "nodes": hosts, "mons": mons, "pools": pools,
            "osds": {"total": osd_total, "up": sum(o["up"] for h in hosts for o in h["osds"]),
                     "in": sum(o["in"] for h in hosts for o in h["osds"])}}


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def render(s: dict) -> str:
    """One screen of text from summary()."""
    o = s["osds"]
    lines = [f"cluster {s.get('fsid') or '?'}: {s['health']}", ""]
    lines.append(f"nodes ({len(s['nodes'])}), {o['total']} OSDs: {o['up']} up, {o['in']} in")
    rows = [("HOST", "OSDS", "UP", "IN", "")]
    for h in s["nodes"]:
        down = [f"osd.{x['id']}" for x in h["osds"] if not x["up"]]
        out = [f"osd.{x['id']}" for x in h["osds"] if not x["in"]]
        note = "; ".join(x for x in (f"down: {' '.join(down)}" if down else "",
                                     f"out: {' '.join(out)}" if out else "",
                                     "no OSD" if not h["osds"] else "") if x)
        rows.append((h["name"], len(h["osds"]), sum(x["up"] for x in h["osds"]),
                     sum(x["in"] for x in h["osds"]), note))
    lines += _table(rows)
    inq = sum(m["in_quorum"] for m in s["mons"])
    lines += ["", f"monitors ({len(s['mons'])}, {inq} in quorum)"]
    lines += _table([("NAME", "ADDRESS", "QUORUM")]
                    + [(m["name"], m["address"], "yes" if m["in_quorum"] else "NO") for m in s["mons"]])
    lines += ["", f"pools ({len(s['pools'])})"]
    if s["pools"]:
        lines += _table([("NAME", "SIZE", "MIN_SIZE", "PGS", "TYPE")]
                        + [(p["name"], p["size"], p["min_size"], p["pg_num"], p["type"]) for p in s["pools"]])
    lines += ["", f"health: {s['health']}"]
    for c in s["checks"]:
        lines.append(f"  {c['code']}: {c['message']}")
        lines += [f"    {d}" for d in c["detail"][:3]]
        if len(c["detail"]) > 3:
            lines.append(f"    ... {len(c['detail']) - 3} more (ceph health detail)")
    return "\n".join(lines) + "\n"
