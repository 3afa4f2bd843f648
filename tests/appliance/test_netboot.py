"""End to end: client machines network-boot from the installed appliance.

The appliance's second NIC and each client's only NIC are joined by a private
Ethernet link between the two QEMU processes (UDP on loopback): nothing
reaches the host's network. The appliance was installed with a `netboot`
section (mode auto, no other DHCP server there), so its first boot made it the
DHCP/TFTP server of that link and started the HTTP service. A diskless client
PXE-boots under SeaBIOS, gets the iPXE menu's diskless-node entry, downloads
the root image over HTTP, runs from RAM and keeps a VM's disk in the
appliance's Ceph. (A client with blank disks that installs over the
network, under OVMF, is node2 of test_scaleout.py.)
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.appliance.bootsector import wait_for_vm_line, write_boot_sector
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
    for name in ("vmlinuz", "initrd.img", "root.squashfs", "hypercore.raw.json"):
        node.succeed(http_get(f"http://{SERVER}:8067/{name}"))
    # The image this node was installed from, kept (sparse, on BTRFS) for network installs.
    node.succeed("test -s /var/lib/hypercore/netboot/hypercore.raw")
    # The root image a client gets is the appliance's own netroot partition.
    part = node.succeed("readlink -f /dev/disk/by-partlabel/hypercore-netroot").split()[0]
    size = int(node.succeed("stat -c %s /var/lib/hypercore/netboot/root.squashfs"))
    node.succeed(f"cmp -n {size} {part} /var/lib/hypercore/netboot/root.squashfs")
    # Each download's SHA-256 is recorded next to it and on the menu's kernel lines.
    menu = node.succeed("cat /var/lib/hypercore/netboot/menu.ipxe")
    for name, key in (("root.squashfs", "hypercore.netroot_sha256"), ("hypercore.raw", "hypercore.source_sha256")):
        sha = node.succeed(f"cut -d' ' -f1 /var/lib/hypercore/netboot/{name}.sha256").strip()
        assert len(sha) == 64 and f"{key}={sha}" in menu, menu
    # The kept image carries none of the live system's SSH host keys or journal.
    raw = "/var/lib/hypercore/netboot/hypercore.raw"
    parts = json.loads(node.succeed(f"sfdisk -J {raw}"))["partitiontable"]["partitions"]
    offset = next(p["start"] for p in parts if p.get("name") == "hypercore-root") * 512
    node.succeed(f"mkdir -p /run/kept && mount -o ro,noload,loop,offset={offset} {raw} /run/kept")
    try:
        node.fail("ls /run/kept/etc/ssh/ssh_host_*")
        assert node.succeed("ls -A /run/kept/var/log/journal 2>/dev/null || true").strip() == ""
    finally:
        node.succeed("umount /run/kept")


def set_menu_default(node: Machine, entry: str) -> None:
    """What an operator does: change menu.default in the answers and apply them again."""
    node.succeed(f"sed -i -E 's/default: (local|live|installer|node)/default: {entry}/' "
                 "/etc/hypercore/answers.yaml && hypercore-netboot apply")
    assert f"--default {entry}" in node.succeed("cat /var/lib/hypercore/netboot/menu.ipxe")


def test_diskless_node_runs_in_ram_with_vm_disks_on_the_appliance(appliance, tmp_path):
    """SeaBIOS PXE -> iPXE menu (entry `node`: the live system plus the
    diskless role) -> kernel, initramfs and root image over HTTP -> the system
    in RAM, which keeps its VM disks in the appliance's Ceph with a key limited
    to RBD in vm-pool."""
    node = appliance.node
    conf = node.succeed("cat /var/lib/hypercore/netboot/diskless/ceph.conf")
    assert "[global]" in conf and "fsid = " in conf and "mon_host = " in conf, conf
    caps = node.succeed("ceph auth get client.diskless 2>/dev/null")
    assert 'caps mon = "profile rbd"' in caps and 'caps osd = "profile rbd pool=vm-pool"' in caps, caps
    set_menu_default(node, "node")
    client = Machine(None, name="pxe-node", workdir=tmp_path / "client", firmware="bios",
                     memory_mb=2048, nics=[appliance.client_nic()], netboot=True)
    t0 = time.monotonic()
    with client:
        client.wait_for_console_text(r"hypercore-netboot: root image http://", timeout=600)
        TIMES["bios: power-on to initramfs"] = time.monotonic() - t0
        client.wait_for_shell(timeout=900)
        TIMES["bios: power-on to shell"] = time.monotonic() - t0
        cmdline = client.succeed("cat /proc/cmdline")
        assert f"hypercore.netroot=http://{SERVER}:8067/root.squashfs" in cmdline, cmdline
        assert "hypercore.role=diskless" in cmdline, cmdline
        assert client.succeed("findmnt -n -o FSTYPE /").strip() == "overlay"
        # Writes go to RAM; the downloaded image stays read-only underneath.
        client.succeed("echo x > /etc/written && test -e /run/hypercore/netroot/upper/etc/written")
        assert client.succeed("cat /run/hypercore/netroot.url").strip() == f"http://{SERVER}:8067/root.squashfs"
        # No disk at all.
        assert client.succeed("lsblk -d -n -o TYPE | grep -c disk || true").strip() == "0"
        # The initramfs handed the NIC back: udev named it, networkd leased it
        # again, with the route to the appliance's Ceph network.
        ip = client.succeed("ip -4 -o addr show")
        assert "192.168.50.1" in ip and " eth0 " not in ip, ip   # a lease from 192.168.50.1xx
        # TFTP against HTTP for the same file (the client's initramfs).
        for proto, cmd in (("tftp", f"busybox tftp -g -r initrd.img -l /tmp/i.tftp {SERVER}"),
                           ("http", http_get(f"http://{SERVER}:8067/initrd.img", "/tmp/i.http"))):
            ms = client.succeed(f"s=$(date +%s%N); {cmd} >/dev/null; "
                                "echo $(( ($(date +%s%N) - s) / 1000000 ))")
            TIMES[f"initrd over {proto} (s)"] = int(ms) / 1000
        client.succeed("cmp /tmp/i.tftp /tmp/i.http")

        client.wait_until_succeeds("systemctl is-active hypercore-diskless.service", timeout=300, interval=5)
        TIMES["diskless node: power-on to Ceph reachable"] = time.monotonic() - t0
        assert f"via {SERVER}" in client.succeed("ip -4 route get 10.0.2.15")
        # It holds only the restricted key, and the VM services use it.
        client.fail("test -e /etc/ceph/ceph.client.admin.keyring")
        assert client.succeed("stat -c %a /etc/ceph/ceph.client.diskless.keyring").strip() == "600"
        assert client.succeed("cat /etc/hypercore/ceph-user").strip() == "diskless"
        client.succeed("create-vm d1 64 1 new:64M --network none")
        assert "d1-disk0" in node.succeed("rbd ls vm-pool").split()
        write_boot_sector(client, "vm-pool/d1-disk0", "HYPERCORE-DISKLESS-VM", user="diskless")
        client.succeed("boot-vm d1")
        wait_for_vm_line(client, "d1", "HYPERCORE-DISKLESS-VM")
        # The key is for RBD images only: the cluster itself is out of its reach.
        rc, out = client.execute("ceph --id diskless osd pool create stolen 8")
        assert rc != 0 and "stolen" not in node.succeed("ceph osd pool ls"), out
        client.succeed("hypercore vm stop d1 --force")
    # The VM's disk outlives the node that ran it: it is in the appliance's Ceph.
    assert "d1-disk0" in node.succeed("rbd ls vm-pool").split()
    node.succeed("rbd rm vm-pool/d1-disk0")
    leases = node.succeed("cat /var/lib/misc/dnsmasq.leases")
    assert client.mac(0) in leases, leases
    (BUILD / "bench-netboot.json").write_text(json.dumps(TIMES, indent=1) + "\n")


def test_a_root_published_from_the_repository_boots_a_client(appliance, netboot_dir, tmp_path):
    """`hypercore repo publish NAME@vN --netboot` puts a menu entry; a client
    boots that entry's kernel line (direct kernel boot of the same kernel and
    initramfs the appliance serves; the PXE/iPXE path is the diskless test's)
    and runs the published root from RAM."""
    node = appliance.node
    node.succeed("hypercore repo add liveroot /var/lib/hypercore/netboot/root.squashfs", timeout=900)
    out = node.succeed("hypercore repo publish liveroot@v1 --netboot")
    assert "1 published root" in out, out
    menu = node.succeed("cat /var/lib/hypercore/netboot/menu.ipxe")
    kernel_line = menu.split(":root-liveroot-v1\n", 1)[1].splitlines()[0].split(" || ")[0]
    url = f"http://{SERVER}:8067/roots/liveroot@v1.squashfs"
    assert f"hypercore.netroot={url}" in kernel_line, kernel_line
    # `kernel URL initrd=initrd.img ARGS... BOOTIF=${...}`: the ARGS (BOOTIF is iPXE's to fill in).
    args = [a for a in kernel_line.split()[2:] if not a.startswith(("initrd=", "BOOTIF="))]
    # The kernel and initramfs the appliance serves, as this build made them.
    local = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in netboot_dir.iterdir() if p.is_file()}
    kernel, initrd = (local[node.succeed(f"sha256sum < /var/lib/hypercore/netboot/{name}").split()[0]]
                      for name in ("vmlinuz", "initrd.img"))
    client = Machine(None, name="root-client", workdir=tmp_path / "client", firmware="bios", memory_mb=2048,
                     nics=[appliance.client_nic()], kernel=kernel, initrd=initrd,
                     append=" ".join(args))
    t0 = time.monotonic()
    with client:
        client.wait_for_shell(timeout=900)
        TIMES["published root: power-on to shell"] = time.monotonic() - t0
        assert client.succeed("cat /run/hypercore/netroot.url").strip() == url
        assert client.succeed("findmnt -n -o FSTYPE /").strip() == "overlay"
    # Unpublished, the menu forgets it (a published version is held against prune: tests/repo).
    node.succeed("hypercore repo publish liveroot@v1 --netboot --unpublish")
    assert "root-liveroot-v1" not in node.succeed("cat /var/lib/hypercore/netboot/menu.ipxe")
    (BUILD / "bench-netboot.json").write_text(json.dumps(TIMES, indent=1) + "\n")


def test_netboot_and_ceph_come_back_after_a_reboot(appliance):
    node = appliance.node
    t0 = time.monotonic()
    node.reboot()
    node.wait_until_succeeds("systemctl is-active dnsmasq.service hypercore-netboot-http.service", timeout=300)
    node.succeed(http_get(f"http://{SERVER}:8067/menu.ipxe"))
    node.wait_until_succeeds("ceph health | grep -x HEALTH_OK", timeout=600, interval=15)
    TIMES["appliance reboot to netboot and HEALTH_OK"] = time.monotonic() - t0
    # The first boot does not run again.
    assert "ConditionResult=no" in node.succeed("systemctl show -p ConditionResult hypercore-firstboot.service")
    (BUILD / "bench-netboot.json").write_text(json.dumps(TIMES, indent=1) + "\n")
