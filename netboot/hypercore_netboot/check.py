"""Everything that would stop network boot from working, found before anything
changes: each problem is one line of what is wrong and one hint to fix it.

The checks are pure (they take the host's facts: `ip -j addr` JSON, the
listening sockets, which files exist); `gather_*` collect those facts.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from hypercore.errors import ProblemsError, plural

from .render import BIOS_BOOT, HTTP_BOOT, INITRD, KERNEL, ROOT_IMAGE, UEFI_BOOT
from .settings import Mode, Settings, range_problems

IPXE_FILES = (BIOS_BOOT, UEFI_BOOT, HTTP_BOOT)
HTTP_FILES = (KERNEL, INITRD, ROOT_IMAGE)


@dataclass(frozen=True)
class Problem:
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.message}\n    hint: {self.hint}"


class NetbootError(ProblemsError):
    """The netboot configuration cannot be applied; carries every Problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"network boot not configured: {plural(len(problems), 'problem')} found; "
                         "nothing was changed", problems,
                         hint="fix them (answer file `netboot` section or this host) and apply again")


@dataclass(frozen=True)
class Listener:
    """A socket listening on this host (in this network namespace)."""

    proto: str          # udp or tcp
    address: str
    port: int
    pid: int | None = None
    process: str | None = None

    def owner(self) -> str:
        return f"{self.process} (pid {self.pid})" if self.pid else "another program"


def ports_needed(s: Settings, mode: Mode) -> list[tuple[str, int, str]]:
    ports = [("udp", 67, "DHCP"), ("udp", 69, "TFTP"), ("tcp", s.http_port, "HTTP")]
    if mode == Mode.PROXY:
        ports.insert(1, ("udp", 4011, "PXE boot server"))
    return ports


def ipv4_addresses(links: list[dict], iface: str) -> list[ipaddress.IPv4Interface] | None:
    """The interface's IPv4 addresses from `ip -j addr` JSON; None when it does not exist."""
    for link in links:
        if link.get("ifname") == iface:
            return [ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
                    for a in link.get("addr_info") or [] if a.get("family") == "inet"]
    return None


def check(s: Settings, mode: Mode, *, links: list[dict], listeners: list[Listener] = (),
          server_ip: str | None = None, ignore_pids: set[int] = frozenset(),
          ipxe_dir: str = "/usr/lib/ipxe", http_root: str = "/var/lib/hypercore/netboot",
          exists=os.path.exists) -> list[Problem]:
    """Every problem of applying settings s in mode (dhcp or proxy) on this host."""
    out: list[Problem] = []
    names = [link.get("ifname") for link in links if link.get("ifname") != "lo"]
    addrs = ipv4_addresses(links, s.interface) if s.interface else None
    if not s.interface:
        out.append(Problem("netboot.interface is not set",
                           "name the interface facing the clients in the answer file, e.g. interface: enp4s0"))
    elif addrs is None:
        out.append(Problem(f"interface {s.interface} does not exist on this machine "
                           f"(it has: {', '.join(names) or 'none'})",
                           "set netboot.interface to one of those (ip link lists them)"))
    if mode == Mode.DHCP:
        if not s.address or not s.range_start or not s.range_end:
            out.append(Problem("dhcp mode needs netboot.address and netboot.range",
                               "add address: 192.168.50.1/24 and range: {start: 192.168.50.100, "
                               "end: 192.168.50.200}, or use mode: proxy"))
        else:
            for path, message, hint in range_problems(s.address, {"start": s.range_start, "end": s.range_end}):
                out.append(Problem(f"netboot.{path}: {message}", hint))
            server_ip = server_ip or str(ipaddress.IPv4Interface(s.address).ip)
    elif addrs is not None:
        if not addrs:
            out.append(Problem(f"interface {s.interface} has no IPv4 address; proxy mode serves from the "
                               "address the site's DHCP server gives it",
                               "connect it to the client network and let it get an address, or use mode: dhcp "
                               "with a static address"))
        elif server_ip and ipaddress.IPv4Address(server_ip) not in [a.ip for a in addrs]:
            out.append(Problem(f"server address {server_ip} is not on {s.interface} "
                               f"(it has {', '.join(str(a) for a in addrs)})",
                               "give one of the interface's addresses, or leave the server address out"))
    for name in IPXE_FILES:
        path = os.path.join(ipxe_dir, name)
        if not exists(path):
            out.append(Problem(f"iPXE binary {path} is missing",
                               "install Debian's ipxe package: apt-get install ipxe"))
    for name in HTTP_FILES:
        path = os.path.join(http_root, name)
        if not exists(path):
            out.append(Problem(f"network-boot file {path} is missing",
                               f"copy {name} from the image build (build/netboot/) into {http_root}"))
    wildcard = {"0.0.0.0", "::", "*"}
    for proto, port, what in ports_needed(s, mode):
        for lst in listeners:
            if (lst.proto == proto and lst.port == port and lst.pid not in ignore_pids
                    and (lst.address in wildcard or lst.address == server_ip)):
                fix = ("change netboot.http_port" if what == "HTTP" else
                       f"stop it (systemctl stop/disable its service) so dnsmasq can serve {what}")
                out.append(Problem(f"port {port}/{proto} ({what}) is already in use by {lst.owner()} "
                                   f"on {lst.address}", fix))
                break
    return out


def dhcp_server_problem(s: Settings, offers) -> Problem | None:
    """dhcp mode next to another DHCP server is refused unless force_dhcp_server."""
    if not offers or s.force_dhcp_server:
        return None
    who = ", ".join(f"{o.server} (offers {o.yiaddr})" for o in offers)
    return Problem(f"another DHCP server already answers on {s.interface}: {who}; a second one would hand "
                   "out conflicting addresses",
                   "use mode: proxy (or auto) to add boot options next to it, or set force_dhcp_server: true "
                   "if you really mean to run two DHCP servers")


# --- host facts ------------------------------------------------------------

def parse_proc_net(text: str, proto: str, v6: bool = False) -> list[tuple[str, str, int, int]]:
    """(proto, address, port, inode) of listening sockets in a /proc/net/{udp,tcp}[6] table."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        addr_hex, port_hex = f[1].split(":")
        state, inode = f[3], int(f[9])
        if (proto == "tcp" and state != "0A") or (proto == "udp" and state != "07"):
            continue
        raw = bytes.fromhex(addr_hex)
        if v6:
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
            addr = str(ipaddress.IPv6Address(raw))
            mapped = ipaddress.IPv6Address(raw).ipv4_mapped
            addr = str(mapped) if mapped else addr
        else:
            addr = str(ipaddress.IPv4Address(raw[::-1]))
        out.append((proto, addr, int(port_hex, 16), inode))
    return out


def socket_owners(proc: str = "/proc") -> dict[int, tuple[int, str]]:
    """socket inode -> (pid, process name), for the processes we may look at."""
    owners: dict[int, tuple[int, str]] = {}
    for d in Path(proc).iterdir():
        if not d.name.isdigit():
            continue
        try:
            name = (d / "comm").read_text().strip()
            for fd in (d / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[int(target[8:-1])] = (int(d.name), name)
        except OSError:
            continue
    return owners


def gather_listeners(proc: str = "/proc") -> list[Listener]:
    """The listening TCP and UDP sockets of this network namespace, with their owners."""
    found = []
    for name, proto, v6 in (("udp", "udp", False), ("udp6", "udp", True), ("tcp", "tcp", False),
                            ("tcp6", "tcp", True)):
        try:
            found += parse_proc_net(Path(proc, "net", name).read_text(), proto, v6)
        except OSError:
            continue
    owners = socket_owners(proc)
    return [Listener(proto, addr, port, *owners.get(inode, (None, None))) for proto, addr, port, inode in found]
