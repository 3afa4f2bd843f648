"""The diskless node: on the appliance, what changes for it; on the client,
how it gets its own narrow identity.

Client (`hypercore-diskless.service`, kernel command line
`hypercore.role=diskless hypercore.diskless=URL`): the node makes a key pair
in RAM, asks the appliance at URL to join (hypercore.cluster.approval) under
the name dl-MAC (its NIC's address, so the same machine gets the same disks
back), shows the request's code on the console, and waits until an operator
runs `hypercore cluster approve CODE` there. The answer, sealed to its key,
holds ceph.conf's client lines and the keyring of client.diskless-NAME, which
may use RBD images only in the namespace vm-pool/NAME
(hypercore.cluster.diskless). Then the VM services act as that identity in
that namespace (/etc/hypercore/ceph-user, /etc/hypercore/rbd-namespace).

Appliance (`netboot.diskless: true`): nothing is published; the files an
earlier version served (HTTP_ROOT/diskless/, one client.diskless key for the
whole client network) are removed, and so is that identity."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from hypercore.cephuser import NAMESPACE_FILE, USER_FILE
from hypercore.cluster import approval
from hypercore.errors import UserError, report
from hypercore.files import write_atomic
from hypercore.run import CommandError, run

OLD_USER = "diskless"
OLD_DIR = "diskless"
POOL = "vm-pool"
URL_KEY = "hypercore.diskless"
KEY_FILE = Path("/run/hypercore/join-request.key")     # in RAM, like the whole node
ENOENT = 2


def ceph_public_network(conf: str = "/etc/ceph/ceph.conf") -> str | None:
    m = re.search(r"^\s*public[_ ]network\s*=\s*(\S+)", Path(conf).read_text(), re.M)
    return m.group(1) if m else None


def retire_published(http_root: Path) -> list[str]:
    """Remove what earlier versions served to the whole client network: the
    client.diskless keyring and its identity (it could touch every image).
    Both came together: without the folder there is nothing to do."""
    old = Path(http_root) / OLD_DIR
    if not old.exists():
        return []
    shutil.rmtree(old)
    out = [f"removed {old} (a key served to the client network)"]
    proc = run(["ceph", "auth", "rm", f"client.{OLD_USER}"], check=False, timeout=120)
    if proc.returncode == 0 and "does not exist" not in (proc.stderr or ""):
        out.append(f"removed the shared identity client.{OLD_USER}: each diskless node is approved with its own")
    elif proc.returncode not in (0, ENOENT):
        raise CommandError(["ceph", "auth", "rm", f"client.{OLD_USER}"], proc.returncode, proc.stdout or "",
                           proc.stderr or "")
    return out


def server_of(url: str) -> str:
    """http://ADDRESS:PORT of hypercore.diskless=URL (older menus add /diskless/)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"{URL_KEY}={url} is not an http:// URL", hint="boot the node from the appliance's menu")
    return f"{parts.scheme}://{parts.netloc}"


def _cmdline_url(path: str = "/proc/cmdline") -> str:
    from hypercore_installer.sources import read_cmdline
    url = read_cmdline(Path(path)).get(URL_KEY)
    if url:
        return url
    raise UserError(f"no {URL_KEY}=URL on the kernel command line",
                    hint="boot the diskless node from the appliance's netboot menu")


def node_name(server: str) -> str:
    """dl-MAC of the NIC this node reaches the appliance through."""
    host = urlsplit(server).hostname
    try:
        route = json.loads(run(["ip", "-j", "route", "get", host], timeout=10).stdout or "[]")
        dev = route[0]["dev"]
        mac = Path(f"/sys/class/net/{dev}/address").read_text().strip()
    except (CommandError, ValueError, LookupError, OSError) as e:
        raise UserError(f"cannot tell which NIC reaches {host}: {e}",
                        hint="check the network (ip route); the node needs a route to the appliance") from None
    return "dl-" + mac.replace(":", "")


def install(material: dict, etc: Path = Path("/etc/ceph")) -> str:
    """Put the approved material in place: ceph.conf, the keyring (0600), the identity and namespace."""
    user, ns = material.get("user"), material.get("namespace")
    if not (isinstance(user, str) and re.fullmatch(r"diskless-[a-z0-9-]{1,40}", user)
            and isinstance(ns, str) and approval.NAME_RE.fullmatch(ns)
            and isinstance(material.get("conf"), str) and isinstance(material.get("keyring"), str)):
        raise UserError("the appliance's answer holds no diskless identity",
                        hint="approve it from an appliance of the same Hypercore version")
    etc.mkdir(parents=True, exist_ok=True)
    write_atomic(etc / "ceph.conf", material["conf"], 0o644)
    write_atomic(etc / f"ceph.client.{user}.keyring", material["keyring"], 0o600)
    USER_FILE.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(USER_FILE, user + "\n")
    write_atomic(NAMESPACE_FILE, ns + "\n")
    return user


def join(url: str, etc: Path = Path("/etc/ceph"), *, say=print, timeout: float = 6000) -> str:
    """Client side: ask, wait for the approval, install the identity, check the namespace answers."""
    server = server_of(url)
    name = node_name(server)
    keys = approval.Keys.load_or_create(KEY_FILE)
    material = approval.ask(server, name, "diskless", keys, say=lambda line: say(f"hypercore: {line}"),
                            timeout=timeout)
    user = install(material, etc)
    ns = material["namespace"]
    try:
        run(["rbd", "--id", user, "--client_mount_timeout=30", "ls", f"{POOL}/{ns}"], timeout=120)
    except CommandError as e:
        raise UserError(f"the appliance's Ceph does not answer: {(e.stderr or '').strip().splitlines()[-1:]}",
                        hint="check the route to the Ceph network (ip route) and the appliance's health") from None
    fsid = re.search(r"fsid\s*=\s*(\S+)", (etc / "ceph.conf").read_text())
    return (f"diskless node {name}: VM disks in {POOL}/{ns} of cluster {fsid.group(1) if fsid else '?'} "
            f"as client.{user}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m hypercore_netboot.diskless",
                                 description="On a diskless node: ask the appliance (hypercore.diskless=URL) "
                                             "for this node's own Ceph identity and wait for an operator to "
                                             "approve it there (hypercore cluster approve CODE).")
    ap.add_argument("--url", help="default: hypercore.diskless= on the kernel command line")
    a = ap.parse_args(argv)
    try:
        print("hypercore: " + join(a.url or _cmdline_url(), say=lambda line: print(line, flush=True)), flush=True)
    except UserError as e:
        return report(e, "hypercore-diskless")
    return 0


if __name__ == "__main__":
    sys.exit(main())
