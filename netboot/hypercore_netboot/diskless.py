"""The diskless node: on the appliance, what it publishes; on the client, what
it fetches.

Appliance (first boot, `netboot.diskless: true`): a cephx identity
client.diskless that may only use RBD images in vm-pool, and
HTTP_ROOT/diskless/{ceph.conf,ceph.client.diskless.keyring}. The key is
readable by anyone on the client network: offer diskless nodes only on a
network you trust.

Client (`hypercore-diskless.service`, kernel command line
`hypercore.role=diskless hypercore.diskless=URL/`): fetch both into /etc/ceph,
make client.diskless the VM services' identity (/etc/hypercore/ceph-user) and
check that the pool answers.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from hypercore.cephuser import USER_FILE
from hypercore.errors import UserError, report
from hypercore.files import write_atomic
from hypercore.run import CommandError, run

USER = "diskless"
POOL = "vm-pool"
CAPS = ["mon", "profile rbd", "osd", f"profile rbd pool={POOL}"]
CONF, KEYRING = "ceph.conf", f"ceph.client.{USER}.keyring"
URL_KEY = "hypercore.diskless"


def ceph_public_network(conf: str = "/etc/ceph/ceph.conf") -> str | None:
    m = re.search(r"^\s*public[_ ]network\s*=\s*(\S+)", Path(conf).read_text(), re.M)
    return m.group(1) if m else None


def client_conf(text: str) -> str:
    """The [global] lines a client needs from this node's ceph.conf: cluster id, monitors, network, cephx."""
    keep = [line.strip() for line in text.splitlines()
            if re.match(r"^\s*(fsid|mon[_ ]host|public[_ ]network|auth[_ ]client[_ ]required)\s*=", line)]
    return ("# For Hypercore diskless nodes (client.diskless), from this appliance.\n"
            "[global]\n" + "\n".join(keep) + "\n")


def publish(http_root: Path, conf: str = "/etc/ceph/ceph.conf") -> list[str]:
    """Create (or keep) client.diskless and put ceph.conf and its keyring in HTTP_ROOT/diskless."""
    out = http_root / "diskless"
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / CONF, client_conf(Path(conf).read_text()))
    run(["ceph", "auth", "get-or-create", f"client.{USER}", *CAPS, "-o", str(out / KEYRING)])
    (out / KEYRING).chmod(0o644)      # served over HTTP: see the module's warning
    return [f"client.{USER} (RBD in {POOL} only) published in {out}"]


def _cmdline_url(path: str = "/proc/cmdline") -> str:
    from hypercore_installer.sources import read_cmdline
    url = read_cmdline(Path(path)).get(URL_KEY)
    if url:
        return url.rstrip("/") + "/"
    raise UserError(f"no {URL_KEY}=URL on the kernel command line",
                    hint="boot the diskless node from the appliance's netboot menu")


def join(url: str, etc: Path = Path("/etc/ceph")) -> str:
    """Client side: fetch the files, name the identity, check the pool."""
    import requests
    etc.mkdir(parents=True, exist_ok=True)
    for name, mode in ((CONF, 0o644), (KEYRING, 0o600)):
        try:
            r = requests.get(url + name, timeout=30)
            r.raise_for_status()
        except requests.RequestException as e:
            raise UserError(f"cannot fetch {url}{name}: {e}",
                            hint="on the appliance: netboot.diskless must be true; "
                                 "systemctl status hypercore-netboot-http") from None
        write_atomic(etc / name, r.content, mode)
    write_atomic(USER_FILE, USER + "\n")
    try:
        run(["rbd", "--id", USER, "--client_mount_timeout=30", "ls", POOL], timeout=120)
    except CommandError as e:
        raise UserError(f"the appliance's Ceph does not answer: {(e.stderr or '').strip().splitlines()[-1:]}",
                        hint="check the route to the Ceph network (ip route) and the appliance's health") from None
    fsid = re.search(r"fsid\s*=\s*(\S+)", (etc / CONF).read_text())
    return f"diskless node: VM disks in {POOL} of cluster {fsid.group(1) if fsid else '?'} as client.{USER}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m hypercore_netboot.diskless",
                                 description="On a diskless node: fetch ceph.conf and the client.diskless "
                                             "keyring from the appliance (hypercore.diskless=URL).")
    ap.add_argument("--url", help="default: hypercore.diskless= on the kernel command line")
    a = ap.parse_args(argv)
    try:
        print("hypercore: " + join(a.url or _cmdline_url()), flush=True)
    except UserError as e:
        return report(e, "hypercore-diskless")
    return 0


if __name__ == "__main__":
    sys.exit(main())
