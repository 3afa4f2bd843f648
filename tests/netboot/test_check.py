"""Validation: every problem found at once, each with its own message and fix."""

from __future__ import annotations

from hypercore_netboot.check import Listener, check, dhcp_server_problem, parse_proc_net
from hypercore_netboot.probe import Offer
from hypercore_netboot.settings import Mode, Settings, answer_problems

LINKS = [{"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
         {"ifname": "enp4s0", "addr_info": [{"family": "inet", "local": "10.0.0.5", "prefixlen": 16}]},
         {"ifname": "enp5s0", "addr_info": []}]
ALL_FILES = lambda path: True  # noqa: E731


def settings(**kw):
    nb = {"enabled": True, "interface": "enp5s0", "mode": "dhcp", "address": "192.168.50.1/24",
          "range": {"start": "192.168.50.100", "end": "192.168.50.200"}}
    nb.update(kw)
    return Settings.from_answers(nb)


def messages(problems):
    return [p.message for p in problems]


def test_a_good_dhcp_setup_has_no_problem():
    assert check(settings(), Mode.DHCP, links=LINKS, exists=ALL_FILES) == []


def test_unknown_interface():
    [p] = check(settings(interface="eth9"), Mode.DHCP, links=LINKS, exists=ALL_FILES)
    assert p.message == "interface eth9 does not exist on this machine (it has: enp4s0, enp5s0)"
    assert "set netboot.interface" in p.hint


def test_range_outside_subnet_reversed_and_containing_the_server_all_at_once():
    ps = check(settings(range={"start": "192.168.51.10", "end": "192.168.50.20"}), Mode.DHCP, links=LINKS,
               exists=ALL_FILES)
    assert messages(ps) == [
        "netboot.range.start: 192.168.51.10 is outside 192.168.50.0/24, the subnet of address 192.168.50.1/24",
        "netboot.range: start 192.168.51.10 is after end 192.168.50.20"]
    [p] = check(settings(range={"start": "192.168.50.1", "end": "192.168.50.9"}), Mode.DHCP, links=LINKS,
                exists=ALL_FILES)
    assert p.message == "netboot.range: 192.168.50.1-192.168.50.9 contains this node's own address 192.168.50.1"
    assert "leaves out 192.168.50.1" in p.hint


def test_proxy_mode_needs_an_address_on_the_interface():
    [p] = check(settings(mode="proxy"), Mode.PROXY, links=LINKS, exists=ALL_FILES)
    assert p.message.startswith("interface enp5s0 has no IPv4 address")
    assert check(settings(interface="enp4s0"), Mode.PROXY, links=LINKS, exists=ALL_FILES) == []
    [p] = check(settings(interface="enp4s0"), Mode.PROXY, links=LINKS, exists=ALL_FILES, server_ip="10.0.0.9")
    assert p.message == "server address 10.0.0.9 is not on enp4s0 (it has 10.0.0.5/16)"


def test_missing_artifacts_name_the_file_and_where_it_comes_from(tmp_path):
    ps = check(settings(), Mode.DHCP, links=LINKS, ipxe_dir=str(tmp_path / "ipxe"), http_root=str(tmp_path / "www"))
    assert messages(ps) == [f"iPXE binary {tmp_path}/ipxe/{n} is missing" for n in
                            ("undionly.kpxe", "snponly.efi", "ipxe.efi")] + \
        [f"network-boot file {tmp_path}/www/{n} is missing" for n in ("vmlinuz", "initrd.img", "root.squashfs")]
    assert ps[0].hint == "install Debian's ipxe package: apt-get install ipxe"
    assert "build/netboot/" in ps[3].hint


def test_ports_in_use_except_by_what_apply_restarts():
    listeners = [Listener("udp", "0.0.0.0", 67, 10, "dhcpd"), Listener("udp", "192.168.50.1", 69, 11, "in.tftpd"),
                 Listener("tcp", "::", 8067, 12, "nginx"), Listener("udp", "127.0.0.1", 69, 13, "other"),
                 Listener("tcp", "0.0.0.0", 8067, 14, "python3")]
    ps = check(settings(), Mode.DHCP, links=LINKS, exists=ALL_FILES, listeners=listeners)
    assert messages(ps) == ["port 67/udp (DHCP) is already in use by dhcpd (pid 10) on 0.0.0.0",
                            "port 69/udp (TFTP) is already in use by in.tftpd (pid 11) on 192.168.50.1",
                            "port 8067/tcp (HTTP) is already in use by nginx (pid 12) on ::"]
    assert ps[2].hint == "change netboot.http_port" and "systemctl stop" in ps[0].hint
    assert check(settings(), Mode.DHCP, links=LINKS, exists=ALL_FILES, listeners=listeners,
                 ignore_pids={10, 11, 12, 14}) == []
    [p] = check(settings(interface="enp4s0"), Mode.PROXY, links=LINKS, exists=ALL_FILES,
                listeners=[Listener("udp", "0.0.0.0", 4011, None, None)])
    assert p.message == "port 4011/udp (PXE boot server) is already in use by another program on 0.0.0.0"


def test_dhcp_next_to_another_dhcp_server_is_refused_unless_forced():
    offers = [Offer("10.0.0.1", "10.0.0.1", "10.0.0.77", "0.0.0.0", "")]
    p = dhcp_server_problem(settings(), offers)
    assert p.message.startswith("another DHCP server already answers on enp5s0: 10.0.0.1 (offers 10.0.0.77)")
    assert "mode: proxy" in p.hint and "force_dhcp_server: true" in p.hint
    assert dhcp_server_problem(settings(force_dhcp_server=True), offers) is None
    assert dhcp_server_problem(settings(), []) is None


def test_answer_rules():
    assert answer_problems({"enabled": True, "mode": "auto"}) == [
        ("netboot.interface", "is required when netboot is enabled",
         "name the interface facing the clients, e.g. enp4s0"),
        ("netboot.address", "is required with `mode: auto` (in case no other DHCP server answers)",
         "give this node's address on the client network, e.g. 192.168.50.1/24"),
        ("netboot.range", "is required with `mode: auto` (in case no other DHCP server answers)",
         "give the client addresses, e.g. {start: 192.168.50.100, end: 192.168.50.200}")]
    assert [p[0] for p in answer_problems({"enabled": True, "interface": "e", "mode": "proxy",
                                           "range": {"start": "1.1.1.1", "end": "1.1.1.2"}})] == ["netboot.range"]
    assert answer_problems({"enabled": False, "mode": "dhcp"}) == []


def test_proc_net_tables():
    udp = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
           "  1: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000  0  0 1234 2\n"
           "  2: 0132A8C0:0045 00000000:0000 07 00000000:00000000 00:00000000 00000000  0  0 1235 2\n")
    assert parse_proc_net(udp, "udp") == [("udp", "0.0.0.0", 67, 1234), ("udp", "192.168.50.1", 69, 1235)]
    tcp6 = ("  sl  local_address remote_address st tx_queue rx_queue tr tm->when retrnsmt uid timeout inode\n"
            "  0: 00000000000000000000000000000000:1F83 00000000000000000000000000000000:0000 0A "
            "00000000:00000000 00:00000000 00000000 0 0 99 1\n"
            "  1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 01 "
            "00000000:00000000 00:00000000 00000000 0 0 98 1\n")
    assert parse_proc_net(tcp6, "tcp", v6=True) == [("tcp", "::", 8067, 99)]
