"""Choosing this node's address and its OSD disks from command output."""

from __future__ import annotations

import copy

import pytest
from tests.firstboot.fakes import IP_ADDR, LSBLK

from hypercore.errors import UserError
from hypercore_installer.firstboot import disks, network
from tests.firstboot.conftest import INSTALL_RECORD

SECOND_NIC = {"ifindex": 3, "ifname": "enp0s3", "link_type": "ether", "address": "52:54:00:12:34:57",
              "addr_info": [{"family": "inet", "local": "192.168.5.7", "prefixlen": 16, "scope": "global"}]}


def test_dhcp_without_interface_takes_the_first_wired_global_address():
    a = network.pick_address(IP_ADDR + [SECOND_NIC], {"mode": "dhcp"})
    assert a == network.Address("enp0s2", "10.0.2.15", 24)
    assert a.network == "10.0.2.0/24"


@pytest.mark.parametrize("iface", ["enp0s3", "52:54:00:12:34:57", "52:54:00:12:34:57".upper()])
def test_dhcp_on_a_named_interface_or_mac(iface):
    a = network.pick_address(IP_ADDR + [SECOND_NIC], {"mode": "dhcp", "interface": iface})
    assert (a.interface, a.ip, a.network) == ("enp0s3", "192.168.5.7", "192.168.0.0/16")


def test_no_address_yet_is_none():
    links = copy.deepcopy(IP_ADDR)
    links[1]["addr_info"] = [i for i in links[1]["addr_info"] if i["family"] == "inet6"]  # link-local only
    assert network.pick_address(links, {"mode": "dhcp"}) is None
    assert network.pick_address([IP_ADDR[0]], None) is None  # loopback only


def test_ipv6_only_and_tentative_addresses():
    link = {"ifname": "eno1", "address": "aa:bb:cc:dd:ee:ff", "addr_info": [
        {"family": "inet6", "local": "2001:db8::5", "prefixlen": 64, "scope": "global", "tentative": True}]}
    assert network.pick_address([link], {"mode": "dhcp"}) is None
    del link["addr_info"][0]["tentative"]
    assert network.pick_address([link], {"mode": "dhcp"}).ip == "2001:db8::5"


def test_static_waits_for_its_own_address():
    net = {"mode": "static", "interface": "enp0s2", "address": "10.0.2.15/24", "gateway": "10.0.2.2"}
    assert network.pick_address(IP_ADDR, net) == network.Address("enp0s2", "10.0.2.15", 24)
    net["address"] = "10.0.2.99/24"
    assert network.pick_address(IP_ADDR, net) is None


def test_interfaces_are_described_for_errors():
    assert network.describe_interfaces(IP_ADDR) == "enp0s2 10.0.2.15/24"


# --- disks ------------------------------------------------------------------

def test_osd_disk_by_id_link_when_present():
    got = disks.resolve_osd_disks(INSTALL_RECORD, {}, LSBLK, lambda p: p == "/dev/disk/by-id/virtio-HCDISK0")
    assert got == [disks.OsdDisk("/dev/disk/by-id/virtio-HCDISK0", "HCDISK0", "/dev/vdb")]


def test_wwn_link_is_preferred():
    rec = copy.deepcopy(INSTALL_RECORD)
    rec["disks"]["osd"][0]["links"] = ["/dev/disk/by-id/ata-X_Y", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"]
    got = disks.resolve_osd_disks(rec, {}, LSBLK, lambda p: True)
    assert got[0].path == "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"


def test_osd_disk_found_by_serial_when_its_name_changed():
    rec = copy.deepcopy(INSTALL_RECORD)
    rec["disks"]["osd"][0].update(path="/dev/vdc", links=[])
    got = disks.resolve_osd_disks(rec, {}, LSBLK, lambda p: False)
    assert got[0].path == "/dev/vdb" and got[0].recorded == "/dev/vdc"


def test_a_missing_osd_disk_is_a_clear_error():
    rec = copy.deepcopy(INSTALL_RECORD)
    rec["disks"]["osd"][0].update(serial="NOPE", links=[])
    with pytest.raises(UserError, match="serial NOPE.*not on this machine"):
        disks.resolve_osd_disks(rec, {}, LSBLK, lambda p: False)


def test_without_install_record_the_answers_paths_are_used():
    answers = {"ceph": {"osd_disks": ["/dev/vdb", {"path": "/dev/disk/by-id/virtio-HCDISK0"}]}}
    got = disks.resolve_osd_disks(None, answers, LSBLK, lambda p: True)
    assert [d.path for d in got] == ["/dev/vdb", "/dev/disk/by-id/virtio-HCDISK0"]
    assert got[0].serial == "HCDISK0"
    with pytest.raises(UserError, match="is a match"):
        disks.resolve_osd_disks(None, {"ceph": {"osd_disks": [{"match": {"serial": "X"}}]}}, LSBLK, lambda p: True)


LVM_LIST = {"0": [{"devices": ["/dev/vdb"], "type": "block",
                   "tags": {"ceph.osd_id": "0", "ceph.osd_fsid": "f0", "ceph.cluster_fsid": "c1"}}],
            "3": [{"devices": ["/dev/nvme0n1p2"], "type": "block",
                   "tags": {"ceph.osd_id": "3", "ceph.osd_fsid": "f3", "ceph.cluster_fsid": "c1"}},
                  {"devices": ["/dev/vdb"], "type": "db", "tags": {}}]}


def test_osds_on_a_device():
    assert disks.osds_on_device(LVM_LIST, "/dev/vdb") == [disks.LvmOsd(0, "f0", "c1")]
    assert disks.osds_on_device(LVM_LIST, "/dev/nvme0n1") == [disks.LvmOsd(3, "f3", "c1")]
    assert disks.osds_on_device(LVM_LIST, "/dev/vd") == []
    assert disks.osds_on_device({}, "/dev/vdb") == []
