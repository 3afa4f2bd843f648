"""Interactive install: ask the questions on the console, build the same
answers dict an answer file gives, validate it, then plan/confirm/apply
exactly like `apply` does."""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import time

import yaml

from hypercore.cluster import token as tokmod
from hypercore.errors import UserError
from hypercore.run import run

from . import answers as answers_mod
from .probe import data_signatures, describe_signature
from .prompt import read_line
from .sizes import human

NO_DISKS = "no disk on this machine can be installed to"


def _pattern(*path: str) -> re.Pattern:
    node = answers_mod.schema()
    for key in path:
        node = node[key]
    return re.compile(node["pattern"])


def ask(question: str, default: str | None = None, check=None) -> str:
    """Ask until check(answer) returns None (else it returns the complaint)."""
    while True:
        shown = f" [{default}]" if default else ""
        try:
            answer = read_line(f"{question}{shown}: ").strip()
        except EOFError:
            raise UserError("input ended before the questions were answered; nothing was changed",
                            hint="answer on a terminal, or use an answer file: hypercore-install apply FILE") from None
        if not answer and default is not None:
            answer = default
        problem = check(answer) if check else (None if answer else "an answer is needed")
        if problem is None:
            return answer
        print(f"  {problem}")


def yes_no(question: str, default: bool = False) -> bool:
    answer = ask(question + (" (yes/no)"), "yes" if default else "no",
                 lambda a: None if a.lower() in ("y", "yes", "n", "no") else "answer yes or no")
    return answer.lower().startswith("y")


def disk_table(disks: list[dict]) -> str:
    rows = [("#", "DISK", "SIZE", "MODEL", "SERIAL", "BUS", "NOTES")]
    for n, d in enumerate(disks, 1):
        notes = []
        if d.get("boot_medium"):
            notes.append("boot medium (never installed to)")
        if d.get("mounts"):
            notes.append("in use: mounted")
        if d.get("holders"):
            notes.append("in use: held")
        sigs = data_signatures(d)
        notes.append("holds: " + ", ".join(s["type"] for s in sigs) if sigs else "blank")
        rows.append((str(n), d["path"], human(d.get("size")), d.get("model") or "-", d.get("serial") or "-",
                     d.get("transport") or "-", "; ".join(notes)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _pick(machine: dict, question: str, usable: list[dict], *, several: bool, optional: bool = False,
          taken: set[str]) -> list[dict]:
    disks = machine["disks"]

    def parse(answer: str):
        picked = []
        for token in answer.replace(",", " ").split():
            d = disks[int(token) - 1] if token.isdigit() and 0 < int(token) <= len(disks) else \
                next((x for x in disks if token in (x["path"], x["name"])), None)
            if d is None:
                return None, f"{token} is not a disk in the table"
            if d not in usable or d["path"] in taken:
                return None, f"{d['path']} cannot be used here (boot medium, in use, or already chosen)"
            picked.append(d)
        if not picked and not optional:
            return None, "choose at least one disk"
        if len(picked) > 1 and not several:
            return None, "choose one disk"
        return picked, None

    answer = ask(question, "" if optional else None, lambda a: parse(a)[1])
    return parse(answer)[0]


def _confirm_erase(disks: list[dict]) -> bool:
    holding = [d for d in disks if data_signatures(d)]
    if not holding:
        return False
    for d in holding:
        print(f"  {d['path']} holds " + ", ".join(describe_signature(s) for s in data_signatures(d)))
    if not yes_no("Erase these disks?"):
        raise UserError("a chosen disk holds data and erasing it was declined; nothing was changed",
                        hint="run again and choose other disks")
    return True


def _network(machine: dict) -> dict:
    nics = [n for n in machine.get("nics", []) if not n.get("virtual")] or machine.get("nics", [])
    if nics:
        print("Network interfaces: " + ", ".join(
            f"{n['name']} ({n.get('mac')}, {n.get('state')}"
            + (f", {' '.join(n['addresses'])}" if n.get("addresses") else "") + ")" for n in nics))
    mode = ask("Network: dhcp or static", "dhcp",
               lambda a: None if a in ("dhcp", "static") else "answer dhcp or static")
    if mode == "dhcp":
        return {"mode": "dhcp"}
    up = next((n["name"] for n in nics if n.get("state") == "up"), nics[0]["name"] if nics else None)
    names = {n["name"] for n in nics} | {n.get("mac") for n in nics}
    iface = ask("Interface", up, lambda a: None if a in names or not nics else f"choose one of {', '.join(sorted(n['name'] for n in nics))}")

    def cidr(a):
        try:
            if "/" not in a:
                raise ValueError
            ipaddress.ip_interface(a)
        except ValueError:
            return "write the address with its prefix length, e.g. 192.168.1.10/24"
        return None

    address = ask("Address (CIDR)", None, cidr)
    net = ipaddress.ip_interface(address).network

    def gateway(a):
        try:
            return None if ipaddress.ip_address(a) in net else f"the gateway must be inside {net}"
        except ValueError:
            return "write an IP address"

    gw = ask("Gateway", None, gateway)

    def dns_list(a):
        try:
            [ipaddress.ip_address(x) for x in a.replace(",", " ").split()]
        except ValueError:
            return "write IP addresses separated by spaces"
        return None

    dns = ask("DNS servers", gw, dns_list).replace(",", " ").split()
    return {"mode": "static", "interface": iface, "address": address, "gateway": gw, "dns": dns}


def hash_password(password: str) -> str:
    """A SHA-512 crypt hash ($6$) made by openssl; the password goes on stdin."""
    return run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n").stdout.strip()


def _root_login() -> dict:
    key_re = _pattern("$defs", "sshPublicKey")
    while True:
        key = ask("Root SSH public key (one line; empty to skip)", "",
                  lambda a: None if not a or key_re.fullmatch(a) else "that is not an OpenSSH public key line")
        password = read_line("Root password (empty to skip): ", secret=True)
        if password and read_line("Root password again: ", secret=True) != password:
            print("  the passwords differ; again")
            continue
        if key or password:
            root = {}
            if key:
                root["ssh_keys"] = [key]
            if password:
                root["password_hash"] = hash_password(password)
            return root
        print("  give an SSH key or a password (or both): root never has an empty password")


def _token_problem(text: str) -> str | None:
    if not text:
        return None
    try:
        tokmod.check_fresh(tokmod.decode(text), time.time())
    except UserError as e:
        return e.message
    return None


def _ceph() -> dict:
    mode = ask("Ceph: start a new cluster or join an existing one (new/join)", "new",
               lambda a: None if a in ("new", "join") else "answer new or join")
    if mode == "new":
        return {"mode": "new"}
    token = ask("Join token (`hypercore cluster token` on a node of the cluster; "
                "empty: give the monitors and the admin key instead)", "", _token_problem)
    if token:
        return {"mode": "join", "join": {"token": token}}
    host_re = _pattern("properties", "ceph", "properties", "mon_hosts", "items")
    mons = ask("Monitor addresses of the existing cluster (separated by spaces)", None,
               lambda a: None if a.split() and all(host_re.fullmatch(h) for h in a.replace(",", " ").split())
               else "write host names or IP addresses, e.g. 192.168.1.10 192.168.1.11")
    key_re = _pattern("properties", "ceph", "properties", "key")
    key = ask("Cluster key (ceph auth get-key client.admin)", None,
              lambda a: None if key_re.fullmatch(a) else "a cephx key is 40 base64 characters ending in ==")
    return {"mode": "join", "mon_hosts": mons.replace(",", " ").split(), "key": key}


def _netboot(machine: dict) -> dict | None:
    """The `netboot` section: network boot for client machines, or None."""
    if not yes_no("Serve network boot (PXE) to client machines from this node?", False):
        return None
    from hypercore_netboot.settings import range_problems
    nics = [n for n in machine.get("nics", []) if not n.get("virtual")] or machine.get("nics", [])
    names = {n["name"] for n in nics} | {n.get("mac") for n in nics}
    iface = ask("Interface facing the clients", nics[-1]["name"] if nics else None,
                lambda a: None if a in names or not nics else
                f"choose one of {', '.join(sorted(n['name'] for n in nics))}")
    mode = ask("DHCP on that network: auto (proxy when a DHCP server answers there, else this node "
               "hands out addresses), dhcp or proxy", "auto",
               lambda a: None if a in ("auto", "dhcp", "proxy") else "answer auto, dhcp or proxy")
    nb: dict = {"enabled": True, "interface": iface, "mode": mode}
    if mode != "proxy":
        def cidr(a):
            try:
                i = ipaddress.IPv4Interface(a)
            except ValueError:
                return "write an IPv4 address with its prefix length, e.g. 192.168.50.1/24"
            return None if "/" in a and i.network.num_addresses >= 4 else "give the prefix length, e.g. /24"
        address = ask("This node's address on the client network (CIDR)", "192.168.50.1/24", cidr)
        own = ipaddress.IPv4Interface(address)
        net = own.network
        first, last = (net[100], net[200]) if net.num_addresses >= 256 else (net[1], net[-2])
        if first <= own.ip <= last:
            first = own.ip + 1

        def in_range(key):
            def check(a):
                try:
                    ipaddress.IPv4Address(a)
                except ValueError:
                    return "write an IPv4 address, e.g. 192.168.50.100"
                rng = {"start": a, "end": str(last)} if key == "start" else {"start": start, "end": a}
                problems = [m for p, m, _ in range_problems(address, rng)]
                return problems[0] if problems else None
            return check
        start = ask("First address handed to clients", str(first), in_range("start"))
        end = ask("Last address handed to clients", str(last), in_range("end"))
        nb.update(address=address, range={"start": start, "end": end})
    if yes_no("Also offer diskless nodes (VM disks on this node's Ceph; you approve each one with "
              "`hypercore cluster approve CODE`)?", False):
        nb["diskless"] = True
    return nb


def collect_answers(machine: dict) -> dict:
    disks = machine["disks"]
    print("Disks on this machine:")
    print(disk_table(disks))
    usable = [d for d in disks if not d.get("boot_medium") and not d.get("mounts") and not d.get("holders")]
    if not usable:
        raise UserError(NO_DISKS, hint="attach a disk; disks that are mounted or held must be freed first")
    host_re = _pattern("properties", "hostname")
    hostname = ask("Hostname", "hypercore", lambda a: None if host_re.fullmatch(a) else
                   "use letters, digits and '-' (RFC 1123), e.g. node1")
    taken: set[str] = set()
    target = _pick(machine, "Target disk for the system (number or path)", usable, several=False, taken=taken)[0]
    taken.add(target["path"])
    data = _pick(machine, "Separate disks for the BTRFS data (numbers; empty: the rest of the target disk)",
                 usable, several=True, optional=True, taken=taken)
    taken |= {d["path"] for d in data}
    osds = _pick(machine, "Disks for Ceph OSDs (numbers separated by spaces)", usable, several=True, taken=taken)
    wipe = _confirm_erase([target, *data, *osds])
    network = _network(machine)
    tz_re = _pattern("properties", "timezone")
    timezone = ask("Time zone", "UTC", lambda a: None if tz_re.fullmatch(a) and answers_mod.known_timezone(a)
                   else "unknown time zone (see timedatectl list-timezones)")
    root = _root_login()
    ceph = _ceph()
    doc = {"version": 1, "target": {"path": _stable_path(target)}, "wipe": wipe}
    if data:
        doc["data"] = {"disks": [_stable_path(d) for d in data]}
    doc.update({"hostname": hostname, "timezone": timezone, "network": network, "root": root,
                "ceph": {**ceph, "osd_disks": [_stable_path(d) for d in osds]}})
    netboot = _netboot(machine)
    if netboot:
        doc["netboot"] = netboot
    return doc


def _stable_path(disk: dict) -> str:
    """A /dev/disk/by-id link when there is one: /dev/sdX names can change
    between boots, and the saved answers are read again at first boot."""
    return (disk.get("links") or [disk["path"]])[0]


def interactive(args) -> int:
    from .cli import check_install_options, machine_for, run_install

    if not sys.stdin.isatty():
        raise UserError("interactive mode needs a terminal",
                        hint="use an answer file: hypercore-install apply ANSWERS.yaml")
    check_install_options(args)
    machine = machine_for(args)
    doc = collect_answers(machine)
    problems = answers_mod.check(doc, now=time.time())
    if problems:
        raise answers_mod.AnswersError("the answers", problems)
    if args.save_answers:
        fd = os.open(args.save_answers, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        print(f"Answers saved to {args.save_answers} (reuse them: hypercore-install apply {args.save_answers})")
    print()
    return run_install(doc, args, ask=True)
