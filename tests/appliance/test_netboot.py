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
import re
import time

import pytest

from tests.appliance.bootsector import put_boot_sector, wait_for_vm_line, write_boot_sector
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
    for name in ("vmlinuz", "initrd.img", "root.squashfs", "hypercore.raw.zst.json"):
        node.succeed(http_get(f"http://{SERVER}:8067/{name}"))
    # The image this node was installed from, kept zstd-compressed for network installs.
    packed = int(node.succeed("stat -c %s /var/lib/hypercore/netboot/hypercore.raw.zst"))
    image = json.loads(node.succeed("cat /var/lib/hypercore/netboot/hypercore.raw.zst.json"))["source"]["image_bytes"]
    assert packed < image // 3, (packed, image)
    node.fail("ls /var/lib/hypercore/netboot/ | grep -E 'partial|copy'")
    # The root image a client gets is the appliance's own netroot partition.
    part = node.succeed("readlink -f /dev/disk/by-partlabel/hypercore-netroot").split()[0]
    size = int(node.succeed("stat -c %s /var/lib/hypercore/netboot/root.squashfs"))
    node.succeed(f"cmp -n {size} {part} /var/lib/hypercore/netboot/root.squashfs")
    # Each download's SHA-256 is recorded next to it and on the menu's kernel lines.
    menu = node.succeed("cat /var/lib/hypercore/netboot/menu.ipxe")
    for name, key in (("root.squashfs", "hypercore.netroot_sha256"), ("hypercore.raw.zst", "hypercore.source_sha256")):
        sha = node.succeed(f"cut -d' ' -f1 /var/lib/hypercore/netboot/{name}.sha256").strip()
        assert len(sha) == 64 and f"{key}={sha}" in menu, menu
    # (That the kept image carries none of the live system's own state, not even in free blocks,
    # is tested on loop devices: tests/installer/test_apply_loop.py.)


def set_menu_default(node: Machine, entry: str) -> None:
    """What an operator does: change menu.default in the answers and apply them again."""
    node.succeed(f"sed -i -E 's/default: (local|live|installer|node)/default: {entry}/' "
                 "/etc/hypercore/answers.yaml && hypercore-netboot apply")
    assert f"--default {entry}" in node.succeed("cat /var/lib/hypercore/netboot/menu.ipxe")


# What must never reach the client network, searched for independently of the product's own check
# (extended regular expressions for grep on the client).
KEY_MATERIAL = {
    "a cephx key": r"AQ[A-Za-z0-9+/]{36}==",
    "a private key": r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY",
    "a password hash": r"[$](6|y|5|2b|gy)[$][./A-Za-z0-9]{8,}",
    "a join token (base64url JSON)": r"eyJ[A-Za-z0-9_-]{30,}",
}
# What a bystander fetches: every URL of the menu, the HTTP root's obvious names, the TFTP files.
GUESSES = ["menu.ipxe", "hypercore-answers.yaml", "answers.yaml", "hypercore.raw.zst.json", "hypercore.raw",
           "hypercore.raw.json", "diskless/ceph.conf",
           "diskless/ceph.client.diskless.keyring", "ceph.conf", "ceph.client.admin.keyring",
           "etc/ceph/ceph.client.admin.keyring", "../../etc/ceph/ceph.client.admin.keyring",
           "%2e%2e/%2e%2e/etc/shadow", "join/requests", "id_ed25519", "repo/id_ed25519",
           "tokens.json", "cluster/tokens.json", "install.json", "SHA256SUMS"]
TFTP = ["undionly.kpxe", "snponly.efi", "ipxe.efi", "menu.ipxe", "../etc/ceph/ceph.client.admin.keyring",
        "ceph.client.admin.keyring", "hypercore-answers.yaml"]


def sweep_as_a_bystander(client: Machine) -> list[str]:
    """Fetch what the client network offers (every URL of the menu, the HTTP
    root's obvious names, TFTP; the first 4 MiB of big files) into /tmp/loot
    on the client, assert that none of it holds key material, and return
    what was fetched."""
    menu = client.succeed(f"curl -sf http://{SERVER}:8067/menu.ipxe")
    urls = set(re.findall(rf"http://{re.escape(SERVER)}:8067/[^\s|]+", menu))
    urls |= {f"http://{SERVER}:8067/{g}" for g in GUESSES}
    client.succeed("rm -rf /tmp/loot && mkdir -p /tmp/loot")
    got = {}
    for i, url in enumerate(sorted(urls)):
        # The server ignores ranges: ask whether it serves the file, then keep its first 4 MiB only.
        code = client.succeed(f"curl -s -o /dev/null -w '%{{http_code}}' -I '{url}' || true").strip()
        if code == "200":
            client.succeed(f"curl -s '{url}' | head -c 4194304 > /tmp/loot/h{i}")
            got[f"h{i}"] = url
    for i, name in enumerate(TFTP):
        rc, _ = client.execute(f"busybox tftp -g -r '{name}' -l /tmp/loot/t{i} {SERVER}")
        if rc == 0:
            got[f"t{i}"] = f"tftp:{name}"
        else:
            client.execute(f"rm -f /tmp/loot/t{i}")
    for what, pattern in KEY_MATERIAL.items():
        hits = client.succeed(f"grep -alE -e '{pattern}' /tmp/loot/* || true").split()
        assert not hits, f"{what} in {[got.get(h.rsplit('/', 1)[-1], h) for h in hits]}"
    return sorted(got.values())


def test_diskless_node_runs_in_ram_with_vm_disks_on_the_appliance(appliance, tmp_path):
    """SeaBIOS PXE -> iPXE menu (entry `node`: the live system plus the
    diskless role) -> kernel, initramfs and root image over HTTP -> the system
    in RAM. First it is a bystander: it fetches everything the client network
    offers and finds no key. Then it asks to join; the operator approves its
    code on the appliance, and it gets its own identity, limited to its own
    RBD namespace: its VM disk is there, and it cannot read, write or delete
    the images of the default namespace (golden images) or of another node."""
    node = appliance.node
    # Nothing for diskless nodes is served, and the old shared identity does not exist.
    node.fail("test -e /var/lib/hypercore/netboot/diskless")
    node.fail("ceph auth get client.diskless 2>/dev/null")
    # What the diskless node must not reach: an image of the default namespace, and another node's.
    put_boot_sector(node, "/root/probe.img", "HYPERCORE-PROBE", size="4M")
    node.succeed("rbd import /root/probe.img vm-pool/probe && rbd namespace create vm-pool/other "
                 "&& rbd import /root/probe.img vm-pool/other/theirs")
    probe_sum = node.succeed("rbd export vm-pool/probe - 2>/dev/null | sha256sum").split()[0]
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

        # A bystander on the client network: everything it can fetch holds no key.
        loot = sweep_as_a_bystander(client)
        assert {f"http://{SERVER}:8067/menu.ipxe", f"http://{SERVER}:8067/hypercore.raw.zst",
                f"http://{SERVER}:8067/root.squashfs", "tftp:undionly.kpxe"} <= set(loot), loot
        client.fail("test -e /etc/ceph/ceph.client.admin.keyring")
        rc, out = client.execute("timeout 60 ceph -s --connect-timeout 20")
        assert rc != 0, out

        # It asks to join; the operator compares the code on its console and approves it.
        m = client.wait_for_console_text(r"join request ([A-Z2-7]{4}-[A-Z2-7]{4}) \(key (SHA256:\S+)\)",
                                         timeout=300)
        code, fingerprint = m.group(1), m.group(2)
        waiting = node.succeed("hypercore cluster approve --list")
        assert code in waiting and fingerprint in waiting and "diskless node dl-" in waiting, waiting
        node.fail("hypercore cluster approve AAAA-BBBB")                     # a code nobody asked with
        out = node.succeed(f"hypercore cluster approve {code.lower()}")
        name = re.search(r"diskless node (dl-[0-9a-f]{12})", out).group(1)
        assert f"RBD namespace vm-pool/{name} only" in out, out
        client.wait_until_succeeds("systemctl is-active hypercore-diskless.service", timeout=300, interval=5)
        TIMES["diskless node: power-on to Ceph reachable (approved)"] = time.monotonic() - t0
        assert f"via {SERVER}" in client.succeed("ip -4 route get 10.0.2.15")
        user = f"diskless-{name}"
        caps = node.succeed(f"ceph auth get client.{user} 2>/dev/null")
        assert f'caps osd = "profile rbd pool=vm-pool namespace={name}"' in caps, caps
        # It holds only its own key, and the VM services use it, in its namespace.
        client.fail("test -e /etc/ceph/ceph.client.admin.keyring")
        assert client.succeed(f"stat -c %a /etc/ceph/ceph.client.{user}.keyring").strip() == "600"
        assert client.succeed("cat /etc/hypercore/ceph-user").strip() == user
        client.succeed("create-vm d1 64 1 new:64M --network none")
        assert "d1-disk0" in node.succeed(f"rbd ls vm-pool/{name}").split()
        assert "d1-disk0" not in node.succeed("rbd ls vm-pool").split()
        write_boot_sector(client, f"vm-pool/{name}/d1-disk0", "HYPERCORE-DISKLESS-VM", user=user)
        client.succeed("boot-vm d1")
        wait_for_vm_line(client, "d1", "HYPERCORE-DISKLESS-VM")
        # Out of its reach: the default namespace (golden images), another node's namespace, the cluster.
        rbd = f"rbd --id {user} --client_mount_timeout=30"
        for cmd in (f"{rbd} export vm-pool/probe /tmp/stolen", f"{rbd} ls vm-pool",
                    f"qemu-io -f raw -c 'write 0 512' rbd:vm-pool/probe:id={user}",
                    f"{rbd} rm --no-progress vm-pool/probe", f"{rbd} import /tmp/mbr vm-pool/planted",
                    f"{rbd} export vm-pool/other/theirs /tmp/stolen2", f"{rbd} rm --no-progress vm-pool/other/theirs",
                    f"ceph --id {user} osd pool create stolen 8"):
            rc, out = client.execute(f"timeout 120 {cmd}")
            assert rc != 0, (cmd, out)
        client.succeed("hypercore vm stop d1 --force")
    # The VM's disk outlives the node that ran it; what it could not touch is as it was.
    assert "d1-disk0" in node.succeed(f"rbd ls vm-pool/{name}").split()
    assert node.succeed("rbd export vm-pool/probe - 2>/dev/null | sha256sum").split()[0] == probe_sum
    images = node.succeed("rbd ls vm-pool").split()
    assert "probe" in images and "planted" not in images, images
    assert "theirs" in node.succeed("rbd ls vm-pool/other").split()
    assert "stolen" not in node.succeed("ceph osd pool ls")
    node.succeed(f"rbd rm vm-pool/{name}/d1-disk0 && rbd rm vm-pool/probe && rbd rm vm-pool/other/theirs "
                 "&& rbd namespace rm vm-pool/other")
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
