"""Rendering: the dnsmasq configuration per mode and client architecture, the iPXE menu, the small files."""

from __future__ import annotations

import pytest

from hypercore_netboot.render import Target, dnsmasq_conf, env_file, ipxe_menu, network_file
from hypercore_netboot.settings import Mode, Settings

S = Settings.from_answers({"enabled": True, "interface": "enp4s0", "mode": "dhcp", "address": "192.168.50.1/24",
                           "range": {"start": "192.168.50.100", "end": "192.168.50.200"}})
DHCP = Target(Mode.DHCP, "192.168.50.1", "192.168.50.0/24")
PROXY = Target(Mode.PROXY, "10.0.0.5", "10.0.0.0/16")


def lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_common_lines_no_dns_one_interface_tftp_root_is_a_parameter():
    for t in (DHCP, PROXY):
        conf = lines(dnsmasq_conf(S, t, tftp_root="/srv/tftp"))
        assert conf[:6] == ["port=0", "interface=enp4s0", "bind-dynamic", "log-dhcp", "enable-tftp",
                            "tftp-root=/srv/tftp"]
    assert "tftp-root=/var/lib/hypercore/tftpboot" in dnsmasq_conf(S, DHCP)


def test_dhcp_mode_hands_out_the_range_and_boot_files():
    conf = lines(dnsmasq_conf(S, DHCP, leasefile="/tmp/l", pidfile="/tmp/p"))
    assert "dhcp-range=192.168.50.100,192.168.50.200,255.255.255.0,12h" in conf
    assert "dhcp-option=option:router" in conf                 # not the clients' gateway
    assert "dhcp-leasefile=/tmp/l" in conf and "pid-file=/tmp/p" in conf
    assert "dhcp-boot=tag:bios,tag:!ipxe,undionly.kpxe,,192.168.50.1" in conf
    assert "dhcp-boot=tag:efi64,tag:!ipxe,snponly.efi,,192.168.50.1" in conf
    assert "dhcp-boot=tag:ipxe,menu.ipxe,,192.168.50.1" in conf
    assert not any(line.startswith("pxe-service") for line in conf)


@pytest.mark.parametrize("t", [DHCP, PROXY], ids=["dhcp", "proxy"])
def test_architecture_tags_and_ipxe_detection(t):
    conf = lines(dnsmasq_conf(S, t))
    for arch, tag in ((0, "bios"), (7, "efi64"), (9, "efi64"), (16, "efihttp")):
        assert f"dhcp-match=set:{tag},option:client-arch,{arch}" in conf
    assert "dhcp-match=set:ipxe,175" in conf and "dhcp-userclass=set:ipxe,iPXE" in conf
    assert f"dhcp-boot=tag:efihttp,tag:!ipxe,http://{t.server_ip}:8067/ipxe.efi" in conf
    assert "dhcp-option-force=tag:efihttp,option:vendor-class,HTTPClient" in conf


def test_proxy_mode_uses_pxe_services_and_never_hands_out_addresses():
    conf = lines(dnsmasq_conf(S, PROXY))
    assert "dhcp-range=10.0.0.0,proxy,255.255.0.0" in conf
    assert not any(line.startswith("dhcp-boot=tag:bios") or line == "dhcp-authoritative" for line in conf)
    assert 'pxe-service=tag:!ipxe,x86PC,"Hypercore network boot (BIOS)",undionly.kpxe' in conf
    for csa in ("X86-64_EFI", "BC_EFI"):
        assert f'pxe-service=tag:!ipxe,{csa},"Hypercore network boot (UEFI)",snponly.efi' in conf
    for csa in ("x86PC", "X86-64_EFI", "BC_EFI"):
        assert f'pxe-service=tag:ipxe,{csa},"Hypercore menu",menu.ipxe' in conf


def test_auto_is_resolved_before_rendering():
    with pytest.raises(ValueError):
        Target(Mode.AUTO, "1.2.3.4", "1.2.3.0/24")


def test_ipxe_menu_entries_default_and_timeout():
    s = Settings.from_answers({"enabled": True, "interface": "e", "http_port": 9000,
                               "menu": {"timeout": 3, "default": "live"}})
    menu = ipxe_menu(s, "10.1.2.3")
    assert menu.startswith("#!ipxe\n")
    assert "choose --timeout 3000 --default live selected || goto local" in menu
    for label in ("item local     Boot from local disk", "item live      Hypercore live system (runs in RAM)",
                  "item installer Install Hypercore on this machine"):
        assert label in menu
    assert "iseq ${platform} pcbios && sanboot --no-describe --drive 0x80 ||\nexit" in menu
    kernel = ("kernel http://10.1.2.3:9000/vmlinuz initrd=initrd.img console=tty0 console=ttyS0,115200 "
              "hypercore.netroot=http://10.1.2.3:9000/root.squashfs BOOTIF=01-${netX/mac:hexhyp}")
    assert f":live\n{kernel} || goto failed\ninitrd http://10.1.2.3:9000/initrd.img" in menu
    assert (f":installer\n{kernel} hypercore.answers=http://10.1.2.3:9000/hypercore-answers.yaml "
            "hypercore.source=http://10.1.2.3:9000/hypercore.raw.zst || goto failed") in menu
    assert ":local" in menu and ":live" in menu


def test_env_and_network_files():
    assert env_file(S, "192.168.50.1", "/srv/http").splitlines()[1:] == [
        "NETBOOT_HTTP_ROOT=/srv/http", "NETBOOT_HTTP_PORT=8067", "NETBOOT_HTTP_BIND=192.168.50.1"]
    net = network_file(S)
    assert "[Match]\nName=enp4s0\n" in net and "Address=192.168.50.1/24" in net and "DHCP=no" in net


def test_the_unit_reads_the_env_file_and_is_disabled_by_the_preset():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    unit = (root / "overlays/hypercore/usr/lib/systemd/system/hypercore-netboot-http.service").read_text()
    for line in ("EnvironmentFile=/etc/hypercore/netboot.env", "DynamicUser=yes", "ProtectSystem=strict",
                 "PrivateTmp=yes", "ReadOnlyPaths=/var/lib/hypercore/netboot",
                 "ExecStart=/usr/bin/python3 -m hypercore_netboot.http --root ${NETBOOT_HTTP_ROOT} "
                 "--port ${NETBOOT_HTTP_PORT} --bind ${NETBOOT_HTTP_BIND} --join-dir /var/lib/hypercore-join",
                 "StateDirectory=hypercore-join"):
        assert line in unit.splitlines()
    preset = (root / "overlays/base/usr/lib/systemd/system-preset/10-hypercore.preset").read_text()
    assert "disable hypercore-netboot-http.service" in preset.splitlines()


def test_diskless_node_entry_and_its_route_to_ceph():
    from dataclasses import replace
    s = Settings.from_answers({"enabled": True, "interface": "e", "mode": "dhcp", "address": "192.168.50.1/24",
                               "range": {"start": "192.168.50.100", "end": "192.168.50.150"},
                               "diskless": True, "menu": {"default": "node"}})
    s = replace(s, ceph_network="10.0.2.0/24")
    conf = dnsmasq_conf(s, Target(Mode.DHCP, "192.168.50.1", "192.168.50.0/24"))
    assert "dhcp-option=option:classless-static-route,10.0.2.0/24,192.168.50.1" in conf
    menu = ipxe_menu(s, "192.168.50.1")
    assert "item node      Hypercore diskless node" in menu and "--default node" in menu
    assert ("hypercore.role=diskless hypercore.diskless=http://192.168.50.1:8067/diskless/ || goto failed"
            in menu)
    # Without diskless: no entry, no route.
    plain = replace(s, diskless=False)
    assert "item node" not in ipxe_menu(plain, "192.168.50.1")
    assert "classless-static-route" not in dnsmasq_conf(plain, Target(Mode.DHCP, "192.168.50.1", "192.168.50.0/24"))


def test_node_as_default_needs_diskless():
    from hypercore_netboot.settings import answer_problems
    nb = {"enabled": True, "interface": "e", "mode": "proxy", "menu": {"default": "node"}}
    assert [p for p, _, _ in answer_problems(nb)] == ["netboot.menu.default"]
    assert answer_problems({**nb, "diskless": True}) == []


def test_the_ceph_conf_a_diskless_node_gets():
    import configparser
    from hypercore_installer.firstboot.render import ceph_conf_new
    from hypercore.cluster.diskless import client_conf
    text = client_conf(ceph_conf_new("a982c888-77e4-4330-9b8d-98b019a8cabb", "node1", "10.0.2.15", "10.0.2.0/24"))
    parsed = configparser.ConfigParser()
    parsed.read_string(text)
    assert dict(parsed["global"]) == {"fsid": "a982c888-77e4-4330-9b8d-98b019a8cabb",
                                      "mon_host": "[v2:10.0.2.15:3300,v1:10.0.2.15:6789]",
                                      "public_network": "10.0.2.0/24", "auth_client_required": "cephx"}
    assert parsed.sections() == ["global"]


def test_menu_offers_each_published_root(tmp_path):
    from hypercore_netboot.roots import Root, published
    (tmp_path / "roots").mkdir()
    for f in ("deb@v10.squashfs", "deb@v2.squashfs", "alpine@v1.squashfs", ".deb@v3.squashfs.123", "notes.txt"):
        (tmp_path / "roots" / f).write_text("x")
    roots = published(tmp_path)
    assert roots == [Root("alpine", "v1"), Root("deb", "v2"), Root("deb", "v10")]
    menu = ipxe_menu(S, "192.168.50.1", roots)
    base = "http://192.168.50.1:8067"
    assert "item root-deb-v2  Root deb@v2 from the image repository (runs in RAM)" in menu
    block = menu.split(":root-deb-v2\n")[1].split("\n\n")[0].splitlines()
    assert block[0].startswith(f"kernel {base}/vmlinuz initrd=initrd.img ")
    assert f"hypercore.netroot={base}/roots/deb@v2.squashfs " in block[0]
    assert block[1:] == [f"initrd {base}/initrd.img || goto failed", "boot || goto failed"]
    # the live entry keeps the appliance's own root; without roots the menu has none
    assert f"hypercore.netroot={base}/root.squashfs " in menu.split(":live\n")[1]
    assert "root-" not in ipxe_menu(S, "192.168.50.1")
    assert menu.index("item root-alpine-v1") < menu.index("item root-deb-v2") < menu.index("item root-deb-v10")


def test_every_kernel_line_carries_the_sha256_of_what_it_downloads(tmp_path):
    """The menu pins each download: the root image on every line (live, install,
    diskless node, published roots), and the answers, image and description on
    the install line; the digests are those of the files in the HTTP root."""
    import hashlib

    from hypercore import digest
    from hypercore_netboot import pins
    from hypercore_netboot.roots import published
    files = {"root.squashfs": b"root image", "hypercore.raw.zst": b"kept image", "hypercore.raw.zst.json": b"{}",
             "hypercore-answers.yaml": b"hostname: n2\n", "roots/deb@v2.squashfs": b"published root"}
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    (tmp_path / "roots").mkdir()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    digest.write_record(tmp_path / "roots/deb@v2.squashfs", sha["roots/deb@v2.squashfs"])
    s = Settings.from_answers({"enabled": True, "interface": "e", "diskless": True})
    menu = ipxe_menu(s, "10.1.2.3", published(tmp_path), pins.served(str(tmp_path)))
    kernels = [line for line in menu.splitlines() if line.startswith("kernel ")]
    assert len(kernels) == 4                       # live, installer, node, the published root
    for line in kernels:
        root = line.split("hypercore.netroot=http://10.1.2.3:8067/")[1].split()[0]
        assert f"hypercore.netroot_sha256={sha[root]} " in line, line
    install = menu.split(":installer\n")[1].splitlines()[0]
    assert (f"hypercore.answers=http://10.1.2.3:8067/hypercore-answers.yaml "
            f"hypercore.answers_sha256={sha['hypercore-answers.yaml']} "
            f"hypercore.source=http://10.1.2.3:8067/hypercore.raw.zst hypercore.source_sha256={sha['hypercore.raw.zst']} "
            f"hypercore.source_json_sha256={sha['hypercore.raw.zst.json']} || goto failed") in install
    # Computed digests of the big files are recorded for the next rendering.
    assert digest.recorded(tmp_path / "root.squashfs") == sha["root.squashfs"]


def test_a_stale_digest_record_is_not_used(tmp_path):
    import os

    from hypercore import digest
    f = tmp_path / "root.squashfs"
    f.write_bytes(b"old")
    digest.write_record(f, "1" * 64)
    assert digest.of(f) == "1" * 64
    f.write_bytes(b"new")
    os.utime(f, ns=(os.stat(f).st_atime_ns, os.stat(digest.record_path(f)).st_mtime_ns + 10**9))
    import hashlib
    assert digest.recorded(f) is None and digest.of(f, store=False) == hashlib.sha256(b"new").hexdigest()
