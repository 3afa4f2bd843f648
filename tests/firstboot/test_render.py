"""Pure renderers: keys, keyrings, the monitor's addresses, ceph.conf."""

from __future__ import annotations

import base64
import configparser
import struct

import pytest

from hypercore_installer.firstboot import render

FSID = "6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"


def conf(text: str) -> configparser.ConfigParser:
    c = configparser.ConfigParser()
    c.read_string(text)
    return c


def test_a_key_has_cephx_layout():
    key = render.new_key(bytes(range(16)), 1700000000.5)
    assert render.KEY_RE.match(key)
    raw = base64.b64decode(key)
    kind, sec, nsec, length = struct.unpack("<HIIH", raw[:12])
    assert (kind, sec, nsec, length) == (1, 1700000000, 500000000, 16)
    assert raw[12:] == bytes(range(16))


def test_keys_are_random_and_valid_for_the_answer_schema():
    import re

    from hypercore_installer import answers
    pattern = answers.schema()["properties"]["ceph"]["properties"]["key"]["pattern"]
    keys = {render.new_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(re.match(pattern, k) for k in keys)


def test_keyring_round_trip_with_caps():
    k1, k2 = render.new_key(), render.new_key()
    text = render.keyring([("mon.", k1, render.MON_CAPS), ("client.admin", k2, render.ADMIN_CAPS)])
    assert text.startswith("[mon.]\n\tkey = " + k1 + "\n\tcaps mon = \"allow *\"\n")
    assert '\tcaps mgr = "allow *"\n' in text and '\tcaps osd = "allow *"\n' in text
    assert render.parse_keyring(text) == {"mon.": k1, "client.admin": k2}


def test_a_keyring_refuses_a_bad_key():
    with pytest.raises(ValueError):
        render.keyring([("mon.", "not-a-key", render.MON_CAPS)])


def test_bootstrap_osd_and_mgr_caps():
    assert render.BOOTSTRAP_OSD_CAPS == {"mon": "profile bootstrap-osd", "mgr": "allow r"}
    assert render.MGR_CAPS["mon"] == "allow profile mgr"


@pytest.mark.parametrize("ip,vec", [
    ("10.0.2.15", "[v2:10.0.2.15:3300,v1:10.0.2.15:6789]"),
    ("2001:db8::10", "[v2:[2001:db8::10]:3300,v1:[2001:db8::10]:6789]"),
])
def test_monitor_address_vector_has_msgr2_and_v1(ip, vec):
    assert render.mon_addrvec(ip) == vec


def test_new_cluster_conf():
    text = render.ceph_conf_new(FSID, "node1", "10.0.2.15", "10.0.2.0/24")
    c = conf(text)
    g = c["global"]
    assert g["fsid"] == FSID
    assert g["mon_host"] == "[v2:10.0.2.15:3300,v1:10.0.2.15:6789]"
    assert g["mon_initial_members"] == "node1"
    assert g["public_network"] == "10.0.2.0/24"
    for what in ("cluster", "service", "client"):
        assert g[f"auth_{what}_required"] == "cephx"
    assert g["auth_allow_insecure_global_id_reclaim"] == "false"
    assert g["osd_crush_chooseleaf_type"] == "0"
    assert c["mon"]["mon_data_avail_warn"] == str(render.MON_DATA_AVAIL_WARN)
    # Cluster-wide single-node settings live in the monitors' database (where
    # the join flow can undo them), never in this per-node file.
    for _who, option, _value in render.SINGLE_NODE_SETTINGS:
        assert option not in text


def test_join_conf():
    text = render.ceph_conf_join(FSID, ["192.168.1.21", "192.168.1.22:6789"], "192.168.1.0/24")
    g = conf(text)["global"]
    assert g["fsid"] == FSID
    assert g["mon_host"] == "192.168.1.21,192.168.1.22:6789"
    assert g["public_network"] == "192.168.1.0/24"
    assert g["auth_allow_insecure_global_id_reclaim"] == "false"
    assert "osd_pool_default_size" not in text and "chooseleaf" not in text
    assert "fsid" not in render.ceph_conf_join(None, ["node1"], None)


def test_single_node_decision_is_only_pool_size_and_the_no_redundancy_warning():
    options = {o for _, o, _ in render.SINGLE_NODE_SETTINGS}
    assert options == {"osd_pool_default_size", "osd_pool_default_min_size", "mon_allow_pool_size_one",
                       "mon_warn_on_pool_no_redundancy"}
    assert ("mon", "auth_allow_insecure_global_id_reclaim", "false") in render.CLUSTER_SETTINGS


def test_public_network():
    assert render.public_network("192.168.1.21", 24) == "192.168.1.0/24"
    assert render.public_network("2001:db8::10", 64) == "2001:db8::/64"


def test_settings_as_one_config_file():
    text = render.settings_conf(render.CLUSTER_SETTINGS + render.SINGLE_NODE_SETTINGS)
    c = conf(text)
    assert c["mon"]["auth_allow_insecure_global_id_reclaim"] == "false"
    assert c["mon"]["mon_allow_pool_size_one"] == "true"
    assert c["global"]["mon_warn_on_pool_no_redundancy"] == "false"
    assert c["global"]["osd_pool_default_size"] == "1"
    assert render.leftover_options("") == []
    assert render.leftover_options("# comment = x\n[global]\n\tfsid = 1\n") == ["fsid"]
