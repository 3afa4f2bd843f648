"""The answer file's `netboot` section as a frozen dataclass, and the rules on it
that need no host (used by `hypercore-install validate` too)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from . import HTTP_PORT


class Mode(StrEnum):
    DHCP = "dhcp"
    PROXY = "proxy"
    AUTO = "auto"


MENU_ENTRIES = ("local", "live", "installer", "node")


@dataclass(frozen=True)
class Settings:
    """What the operator asked for (answers `netboot`), defaults filled in."""

    enabled: bool = False
    interface: str | None = None
    mode: Mode = Mode.AUTO
    address: str | None = None          # CIDR, the node's static address (dhcp mode)
    range_start: str | None = None
    range_end: str | None = None
    http_port: int = HTTP_PORT
    menu_timeout: int = 10
    menu_default: str = "local"
    force_dhcp_server: bool = False
    diskless: bool = False              # offer the diskless node (VMs on this node's Ceph)
    ceph_network: str | None = None     # where clients reach Ceph (routed via this node in dhcp mode)

    @classmethod
    def from_answers(cls, nb: dict | None) -> "Settings":
        nb = nb or {}
        rng = nb.get("range") or {}
        menu = nb.get("menu") or {}
        return cls(
            enabled=bool(nb.get("enabled", False)),
            interface=nb.get("interface"),
            mode=Mode(nb.get("mode", "auto")),
            address=nb.get("address"),
            range_start=rng.get("start"),
            range_end=rng.get("end"),
            http_port=int(nb.get("http_port", HTTP_PORT)),
            menu_timeout=int(menu.get("timeout", 10)),
            menu_default=menu.get("default", "local"),
            force_dhcp_server=bool(nb.get("force_dhcp_server", False)),
            diskless=bool(nb.get("diskless", False)),
        )

    def with_mode(self, mode: Mode) -> "Settings":
        return Settings(**{**self.__dict__, "mode": mode})


def answer_problems(nb: dict) -> list[tuple[str, str, str]]:
    """(path, message, hint) for each rule the schema cannot say, on a section
    whose shape is already valid. No host facts: those are in check.py."""
    out: list[tuple[str, str, str]] = []
    if not isinstance(nb, dict):
        return out
    mode = nb.get("mode", "auto")
    if (nb.get("menu") or {}).get("default") == "node" and not nb.get("diskless"):
        out.append(("netboot.menu.default", "is `node`, but the diskless node is not offered",
                    "set `diskless: true` in the netboot section, or choose another default"))
    if nb.get("enabled") and not nb.get("interface"):
        out.append(("netboot.interface", "is required when netboot is enabled",
                    "name the interface facing the clients, e.g. enp4s0"))
    if mode == "proxy":
        for key in ("address", "range", "force_dhcp_server"):
            if key in nb:
                out.append((f"netboot.{key}", "is only used with `mode: dhcp` or `mode: auto`",
                            "remove it: proxy mode never hands out addresses and uses the interface's own address"))
        return out
    if not nb.get("enabled"):
        return out
    for key, hint in (("address", "give this node's address on the client network, e.g. 192.168.50.1/24"),
                      ("range", "give the client addresses, e.g. {start: 192.168.50.100, end: 192.168.50.200}")):
        if key not in nb:
            out.append((f"netboot.{key}", f"is required with `mode: {mode}`"
                        + (" (in case no other DHCP server answers)" if mode == "auto" else ""), hint))
    out += [(f"netboot.{p}", m, h) for p, m, h in range_problems(nb.get("address"), nb.get("range"))]
    return out


def range_problems(address: str | None, rng: dict | None) -> list[tuple[str, str, str]]:
    """The client range against the node's address: same subnet, ordered, not
    containing the node, not the network or broadcast address."""
    if not address or not rng or "start" not in rng or "end" not in rng:
        return []
    out = []
    try:
        iface = ipaddress.IPv4Interface(address)
        start, end = ipaddress.IPv4Address(rng["start"]), ipaddress.IPv4Address(rng["end"])
    except ValueError:
        return []
    net = iface.network
    hosts_hint = f"use addresses between {net.network_address + 1} and {net.broadcast_address - 1}"
    if iface.ip in (net.network_address, net.broadcast_address) and net.prefixlen < 31:
        out.append(("address", f"{address} is the network or broadcast address of {net}",
                    f"use a host address, e.g. {net.network_address + 1}/{net.prefixlen}"))
    for key, ip in (("start", start), ("end", end)):
        if ip not in net:
            out.append((f"range.{key}", f"{ip} is outside {net}, the subnet of address {address}",
                        hosts_hint + ", or change `address`"))
        elif ip in (net.network_address, net.broadcast_address):
            out.append((f"range.{key}", f"{ip} is the network or broadcast address of {net}", hosts_hint))
    if start > end:
        out.append(("range", f"start {start} is after end {end}", "swap them"))
    elif start <= iface.ip <= end:
        out.append(("range", f"{start}-{end} contains this node's own address {iface.ip}",
                    f"move the range so it leaves out {iface.ip}, or change `address`"))
    return out
