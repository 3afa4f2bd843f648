"""End to end: client machines network-boot from the installed appliance.

The appliance's second NIC and each client's only NIC are joined by a private
Ethernet link between the two QEMU processes (UDP on loopback): nothing
reaches the host's network. The appliance was installed with a `netboot`
section (mode auto, no other DHCP server there), so its first boot made it the
DHCP/TFTP server of that link and started the HTTP service. A diskless client
PXE-boots under SeaBIOS and under OVMF, gets the iPXE menu, its default entry
(the live system), downloads the root image over HTTP and reaches a shell.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import BUILD
from tests.machine import Machine

pytestmark = pytest.mark.boot

SERVER = "192.168.50.1"
TIMES: dict[str, float] = {}


def http_get(url: str, out: str = "/dev/null") -> str:
    return (f"python3 -c 'import shutil, sys, urllib.request; "
            f"shutil.copyfileobj(urllib.request.urlopen(sys.argv[1], timeout=60), open(sys.argv[2], \"wb\"))' "
            f"{url} {out}")


def test_appliance_serves_netboot(appliance):
    node = appliance.node
    # auto found no DHCP server on the client link, so this node is the DHCP server.
    node.wait_until_succeeds("systemctl is-active dnsmasq.service hypercore-netboot-http.service",
                             timeout=120)
    conf = node.succeed("cat /etc/dnsmasq.d/hypercore-netboot.conf")
    assert "dhcp-range=192.168.50.100,192.168.50.150" in conf, conf
    assert "proxy" not in conf.split("dhcp-range=")[1].splitlines()[0], conf
    addr = node.succeed("ip -4 -o addr show")
    assert f"{SERVER}/24" in addr, addr
    # What a client fetches is there: the iPXE binaries over TFTP, the rest over HTTP.
    for name in ("undionly.kpxe", "snponly.efi", "menu.ipxe"):
        node.succeed(f"test -s /var/lib/hypercore/tftpboot/{name}")
    for name in ("vmlinuz", "initrd.img", "root.squashfs"):
        node.succeed(http_get(f"http://{SERVER}:8067/{name}"))
    # The root image a client gets is the appliance's own netroot partition.
    part = node.succeed("readlink -f /dev/disk/by-partlabel/hypercore-netroot").split()[0]
    size = int(node.succeed("stat -c %s /var/lib/hypercore/netboot/root.squashfs"))
    node.succeed(f"cmp -n {size} {part} /var/lib/hypercore/netboot/root.squashfs")


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_diskless_client_boots_the_live_system(appliance, firmware, tmp_path):
    client = Machine(None, name=f"pxe-{firmware}", workdir=tmp_path / "client", firmware=firmware,
                     memory_mb=2048, nics=[appliance.client_nic()], netboot=True)
    t0 = time.monotonic()
    with client:
        client.wait_for_console_text(r"hypercore-netboot: root image http://", timeout=600)
        TIMES[f"{firmware}: power-on to initramfs"] = time.monotonic() - t0
        client.wait_for_shell(timeout=900)
        TIMES[f"{firmware}: power-on to shell"] = time.monotonic() - t0
        cmdline = client.succeed("cat /proc/cmdline")
        assert f"hypercore.netroot=http://{SERVER}:8067/root.squashfs" in cmdline, cmdline
        assert client.succeed("findmnt -n -o FSTYPE /").strip() == "overlay"
        # No disk at all: the system runs from RAM, the live role (installer on offer).
        assert client.succeed("lsblk -d -n -o TYPE | grep -c disk || true").strip() == "0"
        client.succeed("test -e /etc/hypercore/live")
        client.wait_for_unit("multi-user.target", timeout=600)
        ip = client.succeed("ip -4 -o addr show")
        assert "192.168.50.1" in ip, ip   # a lease from the appliance's range (192.168.50.1xx)
        if firmware == "bios":
            # TFTP against HTTP for the same file (the client's initramfs).
            for proto, cmd in (("tftp", f"busybox tftp -g -r initrd.img -l /tmp/i.tftp {SERVER}"),
                               ("http", http_get(f"http://{SERVER}:8067/initrd.img", "/tmp/i.http"))):
                ms = client.succeed(f"s=$(date +%s%N); {cmd} >/dev/null; "
                                    "echo $(( ($(date +%s%N) - s) / 1000000 ))")
                TIMES[f"initrd over {proto} (s)"] = int(ms) / 1000
            client.succeed("cmp /tmp/i.tftp /tmp/i.http")
    leases = appliance.node.succeed("cat /var/lib/misc/dnsmasq.leases")
    assert client.mac(0) in leases, leases
    (BUILD / "bench-netboot.json").write_text(json.dumps(TIMES, indent=1) + "\n")
