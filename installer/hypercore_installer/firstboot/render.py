"""Pure text builders of the first-boot bootstrap: ceph.conf, cephx keys and
keyrings, the cluster settings, the monitor's address vector.

Nothing here runs a command or touches a file; tests/firstboot checks it."""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import struct
import time

from hypercore.cluster import sizing

# Ceph's cephx capabilities of the entities the bootstrap creates.
MON_CAPS = {"mon": "allow *"}
ADMIN_CAPS = {"mds": "allow *", "mgr": "allow *", "mon": "allow *", "osd": "allow *"}
BOOTSTRAP_OSD_CAPS = {"mgr": "allow r", "mon": "profile bootstrap-osd"}
MGR_CAPS = {"mds": "allow *", "mon": "allow profile mgr", "osd": "allow *"}

MON_V2_PORT = 3300
MON_V1_PORT = 6789
# The monitor's store lives on /var/lib (the BTRFS data filesystem on an
# installed node, sized to the disk). Ceph's default 30 % warns on a half-full
# multi-terabyte disk; 10 % still leaves the operator time (ceph-mon stops at
# mon_data_avail_crit, 5 %).
MON_DATA_AVAIL_WARN = 10

KEY_RE = re.compile(r"^[A-Za-z0-9+/]{38}==$")


# --- cephx keys and keyrings ----------------------------------------------

def new_key(secret: bytes | None = None, created: float | None = None) -> str:
    """A cephx secret as ceph-authtool --gen-print-key makes it: base64 of
    (type=AES u16, created sec u32, nsec u32, length u16, 16 random bytes)."""
    secret = os.urandom(16) if secret is None else secret
    if len(secret) != 16:
        raise ValueError("a cephx secret has 16 bytes")
    created = time.time() if created is None else created
    sec = int(created)
    nsec = int(round((created - sec) * 1e9)) % 1_000_000_000
    return base64.b64encode(struct.pack("<HIIH", 1, sec, nsec, 16) + secret).decode()


def keyring(entities: list[tuple[str, str, dict[str, str]]]) -> str:
    """A keyring file: one [entity] section each with its key and caps."""
    out = []
    for name, key, caps in entities:
        if not KEY_RE.match(key):
            raise ValueError(f"not a cephx key for {name}")
        out.append(f"[{name}]\n\tkey = {key}\n"
                   + "".join(f'\tcaps {svc} = "{cap}"\n' for svc, cap in sorted(caps.items())))
    return "".join(out)


def parse_keyring(text: str) -> dict[str, str]:
    """{entity: key} of a keyring file (caps are not needed back)."""
    keys: dict[str, str] = {}
    entity = None
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            entity = m.group(1).strip()
            continue
        m = re.match(r"^key\s*=\s*(\S+)$", line)
        if m and entity:
            keys[entity] = m.group(1)
    return keys


# --- addresses ------------------------------------------------------------

def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"


def mon_addrvec(ip: str) -> str:
    """The monitor's address vector, msgr2 and the legacy protocol:
    [v2:IP:3300,v1:IP:6789]."""
    return f"[v2:{_host_port(ip, MON_V2_PORT)},v1:{_host_port(ip, MON_V1_PORT)}]"


def public_network(ip: str, prefixlen: int) -> str:
    return str(ipaddress.ip_interface(f"{ip}/{prefixlen}").network)


# --- ceph.conf ------------------------------------------------------------

_AUTH = ("auth_cluster_required = cephx\n"
         "auth_service_required = cephx\n"
         "auth_client_required = cephx\n"
         "# Clients must prove their global_id (CVE-2021-20288); cephadm does the same.\n"
         "auth_allow_insecure_global_id_reclaim = false\n")


def ceph_conf_new(fsid: str, host: str, ip: str, network: str) -> str:
    """ceph.conf of the first node of a new cluster. The cluster-wide
    single-node settings are not here but in the monitors' configuration
    database (cluster_settings_single_node), where the join flow can undo them:
    ceph.conf is per node and overrides that database."""
    return (f"# Written by hypercore-install firstboot: the first node of cluster {fsid}.\n"
            "[global]\n"
            f"fsid = {fsid}\n"
            f"mon_initial_members = {host}\n"
            f"mon_host = {mon_addrvec(ip)}\n"
            f"public_network = {network}\n"
            + _AUTH +
            "# Only read when the monitor store is made: the initial CRUSH rule\n"
            "# places copies on different OSDs (0), not different hosts, so one node\n"
            "# can be healthy. The join flow adds a per-host rule once there are hosts.\n"
            "osd_crush_chooseleaf_type = 0\n"
            "\n[mon]\n"
            f"mon_data_avail_warn = {MON_DATA_AVAIL_WARN}\n")


def ceph_conf_join(fsid: str | None, mon_hosts: list[str], network: str | None) -> str:
    """ceph.conf of a node that joins an existing cluster (OSDs only)."""
    lines = ["# Written by hypercore-install firstboot: this node joined an existing cluster.",
             "[global]"]
    if fsid:
        lines.append(f"fsid = {fsid}")
    lines.append(f"mon_host = {','.join(mon_hosts)}")
    if network:
        lines.append(f"public_network = {network}")
    return "\n".join(lines) + "\n" + _AUTH


# --- cluster settings (the monitors' configuration database) ---------------

# (who, option, value): as `ceph config set WHO OPTION VALUE` would set them.
CLUSTER_SETTINGS = [
    ("mon", "auth_allow_insecure_global_id_reclaim", "false"),
]

# Single-node mode (pool size 1, POOL_NO_REDUNDANCY off while there is one
# host): hypercore/cluster/sizing.py explains it; joins and removals change it.
SINGLE_NODE_SETTINGS = sizing.SINGLE_NODE_SETTINGS


def settings_conf(settings: list[tuple[str, str, str]]) -> str:
    """The settings as a config file for `ceph config assimilate-conf`: one
    call instead of one `ceph config set` each (seconds per call under
    emulation). A [who] section per target, in first-seen order."""
    sections: dict[str, list[str]] = {}
    for who, option, value in settings:
        sections.setdefault(who, []).append(f"{option} = {value}")
    return "\n".join(f"[{who}]\n" + "\n".join(lines) + "\n" for who, lines in sections.items())


def leftover_options(text: str) -> list[str]:
    """Options `ceph config assimilate-conf` printed back: it could not take them."""
    return [line.split("=")[0].strip() for line in text.splitlines()
            if "=" in line and not line.lstrip().startswith(("#", ";", "["))]
