"""Which address this node's Ceph daemons use: the one systemd-networkd gave
the interface the answer file configured. Pure: works on `ip -j addr` JSON."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

MAC_RE = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")
# What the installer's .network file matches without an interface (render.network_file).
DEFAULT_NAMES = ("en*", "eth*")


@dataclass(frozen=True)
class Address:
    interface: str
    ip: str
    prefixlen: int

    @property
    def network(self) -> str:
        return str(ipaddress.ip_interface(f"{self.ip}/{self.prefixlen}").network)


def _link_matches(link: dict, iface: str | None) -> bool:
    name = link.get("ifname") or ""
    if name == "lo" or link.get("link_type") == "loopback":
        return False
    if not iface:
        return any(fnmatchcase(name, pattern) for pattern in DEFAULT_NAMES)
    if MAC_RE.match(iface):
        return (link.get("address") or "").lower() == iface.lower()
    return name == iface


def _usable(info: dict) -> bool:
    if info.get("family") not in ("inet", "inet6") or info.get("scope") != "global":
        return False
    # IPv6 addresses still being checked for duplicates cannot be bound yet.
    return not any(info.get(flag) for flag in ("tentative", "dadfailed", "deprecated"))


def pick_address(links: list[dict], network: dict | None) -> Address | None:
    """This node's address for Ceph, or None while it has none yet.

    `network` is the answers' network section. Static: its address, once it is
    on the (matching) interface. DHCP: the first global IPv4 address (else
    IPv6) of the configured interface, or of the first en*/eth* interface
    that has one."""
    network = network or {"mode": "dhcp"}
    iface = network.get("interface")
    candidates = [link for link in links if _link_matches(link, iface)]
    if network.get("mode") == "static" and network.get("address"):
        want = ipaddress.ip_interface(network["address"])
        for link in candidates:
            for info in link.get("addr_info") or []:
                if _usable(info) and ipaddress.ip_address(info["local"]) == want.ip:
                    return Address(link["ifname"], str(want.ip), want.network.prefixlen)
        return None
    for family in ("inet", "inet6"):
        for link in candidates:
            for info in link.get("addr_info") or []:
                if info.get("family") == family and _usable(info):
                    return Address(link["ifname"], info["local"], int(info["prefixlen"]))
    return None


def describe_interfaces(links: list[dict]) -> str:
    """`enp0s2 10.0.2.15/24, enp0s3 (no address)` for error messages."""
    parts = []
    for link in links:
        if link.get("ifname") == "lo":
            continue
        addrs = [f"{i['local']}/{i['prefixlen']}" for i in link.get("addr_info") or []
                 if i.get("scope") == "global"]
        parts.append(f"{link.get('ifname')} {' '.join(addrs) or '(no address)'}")
    return ", ".join(parts) or "no network interface"
