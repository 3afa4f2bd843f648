"""The real thing in network namespaces: dnsmasq with the configuration
`hypercore-netboot apply` wrote, PXE-looking DHCP clients (busybox udhcpc and
the probe) getting addresses and boot files, TFTP and HTTP downloads compared
byte for byte, proxy-DHCP next to a site DHCP server, the probe, and a failed
apply keeping the previous configuration. No traffic leaves the namespaces."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.netboot.netns import Lab, repo_env, wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
              pytest.mark.skipif(not shutil.which("dnsmasq") or not os.path.exists("/usr/lib/ipxe/snponly.efi"),
                                 reason="needs dnsmasq-base and ipxe (tools/host-prereqs)")]

PY = "/usr/bin/python3"
SERVER, NET = "10.77.0.1", "10.77.0.0/24"
PORT = 8067
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew) ip addr add "$ip/$mask" dev "$interface"; env > "{out}" ;;
esac
"""


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def work(tmp_path):
    """HTTP root with stand-in kernel, initrd and root image; paths for everything else."""
    www = tmp_path / "www"
    www.mkdir()
    for name, size in (("vmlinuz", 300_000), ("initrd.img", 200_000), ("root.squashfs", 100_000)):
        (www / name).write_bytes(os.urandom(size))
    return tmp_path


def netboot_cli(lab, ns, work, answers: dict, *args, check=True, timeout="1"):
    path = work / "answers.yaml"
    path.write_text(yaml.safe_dump({"netboot": answers}))
    env = {**os.environ, **repo_env()}
    argv = ["ip", "netns", "exec", ns, PY, "-m", "hypercore_netboot", "apply", "--answers", str(path),
            "--timeout", timeout, "--dnsmasq-conf", str(work / "dnsmasq.d/hypercore-netboot.conf"),
            "--network-file", str(work / "network/05-hypercore-netboot.network"),
            "--env-file", str(work / "netboot.env"), "--tftp-root", str(work / "tftp"),
            "--http-root", str(work / "www"), "--leasefile", str(work / "leases"),
            "--pidfile", str(work / "dnsmasq.pid"), *args]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def start_dnsmasq(lab, ns, conf, log):
    # --user=root: pytest's temp dirs are private to root (the appliance's roots are 0755).
    proc = lab.spawn(ns, "dnsmasq", "--keep-in-foreground", "--user=root", f"--conf-file={conf}",
                     "--log-facility=-", log=str(log))
    wait_for(lambda: "started" in Path(log).read_text() or proc.poll() is not None, 10, "dnsmasq to start")
    assert proc.poll() is None, Path(log).read_text()
    return proc


def start_http(lab, ns, root, log):
    lab.spawn(ns, PY, "-m", "hypercore_netboot.http", "--root", str(root), "--port", str(PORT), "--bind", SERVER,
              log=str(log), env={**os.environ, **repo_env()})
    wait_for(lambda: "serving" in Path(log).read_text(), 10, "the HTTP server")


def udhcpc(lab, ns, work, arch: int | None, name: str) -> dict:
    out = work / f"lease-{name}"
    script = work / f"udhcpc-{name}.sh"
    script.write_text(UDHCPC_SCRIPT.format(out=out))
    script.chmod(0o755)
    pxe = [] if arch is None else ["-V", f"PXEClient:Arch:{arch:05d}:UNDI:002001", "-x", f"0x5d:{arch:04x}"]
    lab.ns(ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", str(script),
           *pxe, timeout=30)
    return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)


def fetch_tftp(lab, ns, work, server, name) -> bytes:
    dest = work / f"got-{name}"
    lab.ns(ns, "busybox", "tftp", "-g", "-r", name, "-l", str(dest), server, timeout=30)
    return dest.read_bytes()


def fetch_http(lab, ns, work, url) -> bytes:
    dest = work / "got-http"
    lab.ns(ns, "busybox", "wget", "-q", "-O", str(dest), url, timeout=30)
    return dest.read_bytes()


def in_ns(lab, ns, code: str) -> str:
    return lab.ns(ns, PY, "-c", code, env=repo_env(), timeout=30).stdout


def test_dhcp_mode_bios_and_uefi_clients_get_address_boot_file_tftp_and_http(lab, work):
    srv = lab.add_host("srv", f"{SERVER}/24")
    cli = lab.add_host("cli")
    nb = {"enabled": True, "interface": "eth0", "mode": "dhcp", "address": f"{SERVER}/24",
          "range": {"start": "10.77.0.100", "end": "10.77.0.150"}}
    proc = netboot_cli(lab, srv, work, nb, "--no-restart")
    assert "mode dhcp, server 10.77.0.1" in proc.stderr
    assert "Address=10.77.0.1/24" in (work / "network/05-hypercore-netboot.network").read_text()
    start_dnsmasq(lab, srv, work / "dnsmasq.d/hypercore-netboot.conf", work / "dnsmasq.log")
    start_http(lab, srv, work / "www", work / "http.log")

    bios = udhcpc(lab, cli, work, 0, "bios")
    assert bios["serverid"] == SERVER and bios["siaddr"] == SERVER and bios["boot_file"] == "undionly.kpxe"
    assert bios["ip"].startswith("10.77.0.1") and 100 <= int(bios["ip"].rsplit(".", 1)[1]) <= 150
    assert "router" not in bios                                   # the node is not the clients' gateway
    assert fetch_tftp(lab, cli, work, SERVER, "undionly.kpxe") == Path("/usr/lib/ipxe/undionly.kpxe").read_bytes()
    lab.ns(cli, "ip", "addr", "flush", "dev", "eth0")

    uefi = udhcpc(lab, cli, work, 7, "uefi")
    assert uefi["boot_file"] == "snponly.efi" and uefi["siaddr"] == SERVER
    assert fetch_tftp(lab, cli, work, SERVER, "snponly.efi") == Path("/usr/lib/ipxe/snponly.efi").read_bytes()
    menu = fetch_tftp(lab, cli, work, SERVER, "menu.ipxe").decode()
    assert menu.startswith("#!ipxe") and f"http://{SERVER}:{PORT}/vmlinuz" in menu
    for name in ("vmlinuz", "initrd.img", "root.squashfs", "menu.ipxe", "ipxe.efi"):
        assert fetch_http(lab, cli, work, f"http://{SERVER}:{PORT}/{name}") == (work / "www" / name).read_bytes()
    assert f'"GET /vmlinuz HTTP/1.1" 200' in (work / "http.log").read_text()
    # No directory listing, nothing outside the root.
    for bad in ("/", "/../answers.yaml"):
        r = lab.ns(cli, "busybox", "wget", "-q", "-O", "-", f"http://{SERVER}:{PORT}{bad}", check=False)
        assert r.returncode != 0

    # iPXE and UEFI HTTP boot clients (the probe speaks for them: no address is taken).
    out = in_ns(lab, cli, "from hypercore_netboot import probe\n"
                          "for kw in (dict(arch=0, ipxe=True), dict(arch=16, vendor_class='HTTPClient:Arch:00016')):\n"
                          "    o = probe.discover('eth0', timeout=3, first_only=True, **kw)[0]\n"
                          "    print(o.file, o.vendor_class)\n")
    assert out.splitlines() == ["menu.ipxe ", f"http://{SERVER}:{PORT}/ipxe.efi HTTPClient"]


def test_proxy_mode_next_to_the_site_dhcp_server(lab, work):
    site = lab.add_host("site", "10.77.0.254/24")
    srv = lab.add_host("srv")
    cli = lab.add_host("cli")
    (work / "site.conf").write_text(
        "port=0\ninterface=eth0\nbind-dynamic\nlog-dhcp\ndhcp-range=10.77.0.10,10.77.0.20,255.255.255.0,1h\n"
        f"dhcp-leasefile={work}/site.leases\n")
    start_dnsmasq(lab, site, work / "site.conf", work / "site.log")
    # (dnsmasq pings an address before offering it, for up to 3 s: the probe waits 5 s.)
    # The appliance gets its own address from the site's DHCP server, as on a real network.
    got = udhcpc(lab, srv, work, None, "appliance")
    server = got["ip"]
    nb = {"enabled": True, "interface": "eth0", "mode": "auto", "address": "192.168.50.1/24",
          "range": {"start": "192.168.50.100", "end": "192.168.50.200"}}
    proc = netboot_cli(lab, srv, work, nb, "--no-restart")
    assert "found DHCP server 10.77.0.254 offers" in proc.stderr
    assert f"mode proxy, server {server}" in proc.stderr          # auto picked proxy
    conf = (work / "dnsmasq.d/hypercore-netboot.conf").read_text()
    assert "dhcp-range=10.77.0.0,proxy,255.255.255.0" in conf
    assert not (work / "network/05-hypercore-netboot.network").exists()
    start_dnsmasq(lab, srv, work / "dnsmasq.d/hypercore-netboot.conf", work / "dnsmasq.log")

    # The client's address comes from the site; its boot file from the appliance (proxy offer,
    # then the PXE boot server request on port 4011, as PXE ROMs do). udhcpc is no PXE ROM: it
    # would take the proxy's address-less offer, so it asks as a plain client and the probe
    # plays the PXE part.
    lease = udhcpc(lab, cli, work, None, "client")
    assert lease["serverid"] == "10.77.0.254" and lease["ip"].startswith("10.77.0.")
    code = ("from hypercore_netboot import probe\n"
            "for arch in (0, 7, 9):\n"
            "    offers = probe.discover('eth0', timeout=2, arch=arch)\n"
            "    proxy = [o for o in offers if o.is_proxy]\n"
            "    assert len(proxy) == 1 and all(o.server == '10.77.0.254' for o in offers if not o.is_proxy)\n"
            f"    ack = probe.boot_request('eth0', proxy[0].server, '{lease['ip']}', arch=arch,\n"
            "                             item=probe.boot_menu_type(proxy[0]))\n"
            "    print(proxy[0].server, ack.siaddr, ack.file)\n")
    assert in_ns(lab, cli, code).splitlines() == [f"{server} {server} undionly.kpxe",
                                                  f"{server} {server} snponly.efi", f"{server} {server} snponly.efi"]
    assert fetch_tftp(lab, cli, work, server, "snponly.efi") == Path("/usr/lib/ipxe/snponly.efi").read_bytes()
    assert "DHCPOFFER" not in (work / "dnsmasq.log").read_text()   # the proxy never offered an address


def test_probe_finds_a_dhcp_server_and_none_when_there_is_none(lab, work):
    site = lab.add_host("site", "10.77.0.254/24")
    cli = lab.add_host("cli")
    env = {**os.environ, **repo_env()}
    probe_cmd = ["ip", "netns", "exec", cli, PY, "-m", "hypercore_netboot", "probe", "eth0", "--timeout"]
    none = subprocess.run([*probe_cmd, "1"], env=env, capture_output=True, text=True, timeout=30)
    assert (none.returncode, none.stdout) == (0, "no DHCP server answered on eth0 within 1 s\n")
    (work / "site.conf").write_text("port=0\ninterface=eth0\nbind-dynamic\n"
                                    "dhcp-range=10.77.0.10,10.77.0.20,255.255.255.0,1h\n"
                                    f"dhcp-leasefile={work}/site.leases\n")
    start_dnsmasq(lab, site, work / "site.conf", work / "site.log")
    found = subprocess.run([*probe_cmd, "5"], env=env, capture_output=True, text=True, timeout=30)
    # dnsmasq picks an address of its range from a hash of the client's MAC.
    assert found.returncode == 0 and re.fullmatch(r"DHCP server 10\.77\.0\.254 offers 10\.77\.0\.(1\d|20)\n",
                                                  found.stdout), found


def test_dhcp_mode_next_to_another_server_is_refused_unless_forced(lab, work):
    site = lab.add_host("site", "10.77.0.254/24")
    srv = lab.add_host("srv", f"{SERVER}/24")
    (work / "site.conf").write_text("port=0\ninterface=eth0\nbind-dynamic\n"
                                    "dhcp-range=10.77.0.200,10.77.0.220,255.255.255.0,1h\n"
                                    f"dhcp-leasefile={work}/site.leases\n")
    start_dnsmasq(lab, site, work / "site.conf", work / "site.log")
    nb = {"enabled": True, "interface": "eth0", "mode": "dhcp", "address": f"{SERVER}/24",
          "range": {"start": "10.77.0.100", "end": "10.77.0.150"}}
    proc = netboot_cli(lab, srv, work, nb, "--no-restart", check=False, timeout="5")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "another DHCP server already answers on eth0: 10.77.0.254" in proc.stderr
    assert not (work / "dnsmasq.d").exists()
    netboot_cli(lab, srv, work, {**nb, "force_dhcp_server": True}, "--no-restart")
    assert (work / "dnsmasq.d/hypercore-netboot.conf").exists()


def test_a_failed_apply_keeps_the_previous_configuration(lab, work):
    srv = lab.add_host("srv", f"{SERVER}/24")
    nb = {"enabled": True, "interface": "eth0", "mode": "dhcp", "address": f"{SERVER}/24",
          "range": {"start": "10.77.0.100", "end": "10.77.0.150"}}
    netboot_cli(lab, srv, work, nb, "--no-restart")
    files = [work / "dnsmasq.d/hypercore-netboot.conf", work / "netboot.env", work / "tftp/menu.ipxe",
             work / "network/05-hypercore-netboot.network"]
    before = {f: f.read_bytes() for f in files}

    # A bad setting: refused before anything is written, every problem listed.
    (work / "www/vmlinuz").rename(work / "vmlinuz.away")
    proc = netboot_cli(lab, srv, work, {**nb, "interface": "eth7"}, "--no-restart", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "2 problems found; nothing was changed" in proc.stderr
    assert "interface eth7 does not exist on this machine (it has: eth0)" in proc.stderr
    assert f"network-boot file {work}/www/vmlinuz is missing" in proc.stderr
    assert {f: f.read_bytes() for f in files} == before
    (work / "vmlinuz.away").rename(work / "www/vmlinuz")
    # The answer file's own rules come first (as `hypercore-install validate` reports them).
    proc = netboot_cli(lab, srv, work, {**nb, "range": {"start": "10.77.0.160", "end": "10.77.0.150"}},
                       "--no-restart", check=False)
    assert proc.returncode == 1 and "netboot.range: start 10.77.0.160 is after end 10.77.0.150" in proc.stderr
    assert {f: f.read_bytes() for f in files} == before

    # A good new setting whose restart fails: the previous files are put back.
    changed = {**nb, "http_port": 9000, "range": {"start": "10.77.0.120", "end": "10.77.0.130"}}
    proc = netboot_cli(lab, srv, work, changed, "--restart-command", "false", check=False)
    assert proc.returncode == 1 and "starting network boot failed" in proc.stderr
    assert "previous configuration is back in place" not in proc.stderr   # `false` fails the second time too
    assert {f: f.read_bytes() for f in files} == before
    assert not list((work / "dnsmasq.d").glob(".hypercore-netboot*"))     # no temp files left

    # And with a restart that works, the new configuration is in place.
    netboot_cli(lab, srv, work, changed, "--restart-command", "true")
    assert "NETBOOT_HTTP_PORT=9000" in (work / "netboot.env").read_text()


def test_dnsmasq_refusing_the_file_changes_nothing(tmp_path, monkeypatch):
    from hypercore.errors import UserError
    from hypercore_netboot import apply as ap
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text("# old\n")
    with pytest.raises(UserError, match="dnsmasq refuses the new configuration"):
        ap.test_dnsmasq_conf("dhcp-range=nonsense\n", str(tmp_path))
    assert conf.read_text() == "# old\n" and [p.name for p in tmp_path.iterdir()] == ["dnsmasq.conf"]
