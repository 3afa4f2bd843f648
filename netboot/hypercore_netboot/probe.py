"""Is there a DHCP server on this interface? Send one DHCPDISCOVER (pure
Python: a UDP socket on 0.0.0.0:68 bound to the interface, broadcast flag set
so answers come back by broadcast) and collect the DHCPOFFERs for a few seconds.

The packet can also look like a PXE or iPXE client (vendor class, client
architecture, UUID, user class), which the tests use to ask dnsmasq for boot
files. Nothing is ever requested: no address is taken.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypercore.errors import UserError

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER = 1, 2
RESEND = 1.0
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
# subnet mask, router, DNS, domain, broadcast, vendor-specific, vendor class,
# TFTP server, boot file, UUID
PARAMS = bytes([1, 3, 6, 15, 28, 43, 60, 66, 67, 97])


@dataclass(frozen=True)
class Offer:
    """One DHCPOFFER: who sent it and what it offers."""

    server: str                 # option 54 (server identifier), else the packet's source
    source: str                 # the IP source address of the packet
    yiaddr: str                 # the offered address (0.0.0.0 from a proxy-DHCP server)
    siaddr: str                 # next server (TFTP)
    file: str                   # boot file name (the `file` field, else option 67)
    options: dict = field(default_factory=dict, compare=False)

    @property
    def is_proxy(self) -> bool:
        return self.yiaddr == "0.0.0.0"

    @property
    def vendor_class(self) -> str:
        return self.options.get(60, b"").decode("ascii", "replace")


def interface_mac(iface: str, sysfs: str = "/sys/class/net") -> bytes:
    """The interface's MAC address as 6 bytes; a UserError for an unknown interface."""
    try:
        text = Path(sysfs, iface, "address").read_text().strip()
    except OSError:
        raise UserError(f"interface {iface} does not exist",
                        hint="list the interfaces with `ip link` and give one of them") from None
    return bytes.fromhex(text.replace(":", ""))


def discover_packet(mac: bytes, xid: int, *, arch: int | None = None, vendor_class: str | None = None,
                    user_class: str | None = None, ipxe: bool = False) -> bytes:
    """A BOOTP/DHCP DHCPDISCOVER from mac with the broadcast flag.

    arch (option 93) makes it a PXE client: vendor class
    PXEClient:Arch:NNNNN:UNDI:002001, client NDI and a UUID as PXE ROMs send.
    ipxe adds option 175 and user class iPXE, as iPXE sends."""
    if len(mac) != 6:
        raise ValueError("mac must be 6 bytes")
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                         bytes(4), bytes(4), bytes(4), bytes(4), mac + bytes(10), b"", b"")
    opts = [(53, bytes([DISCOVER])), (61, b"\x01" + mac), (55, PARAMS)]
    if arch is not None:
        vendor_class = vendor_class or f"PXEClient:Arch:{arch:05d}:UNDI:002001"
        opts += [(93, struct.pack("!H", arch)), (94, b"\x01\x02\x01"), (97, b"\x00" + mac + bytes(10))]
    if vendor_class:
        opts.append((60, vendor_class.encode()))
    if ipxe:
        user_class = user_class or "iPXE"
        opts.append((175, b"\x13\x01\x01"))          # iPXE encapsulated option: "HTTP supported"
    if user_class:
        opts.append((77, user_class.encode()))
    body = b"".join(bytes([code, len(value)]) + value for code, value in opts)
    return header + MAGIC + body + b"\xff"


def parse_packet(data: bytes) -> tuple[dict, dict[int, bytes]]:
    """The fixed BOOTP fields and the DHCP options of a packet; ValueError if it is not one."""
    if len(data) < 240 or data[236:240] != MAGIC:
        raise ValueError("not a DHCP packet")
    (op, _htype, _hlen, _hops, xid, _secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname,
     file) = struct.unpack("!BBBBIHH4s4s4s4s16s64s128s", data[:236])
    options: dict[int, bytes] = {}
    i = 240
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        length = data[i + 1]
        options[code] = options.get(code, b"") + data[i + 2:i + 2 + length]
        i += 2 + length
    fields = {"op": op, "xid": xid, "flags": flags, "chaddr": chaddr,
              "ciaddr": socket.inet_ntoa(ciaddr), "yiaddr": socket.inet_ntoa(yiaddr),
              "siaddr": socket.inet_ntoa(siaddr), "giaddr": socket.inet_ntoa(giaddr),
              "sname": sname.split(b"\0", 1)[0].decode("ascii", "replace"),
              "file": file.split(b"\0", 1)[0].decode("ascii", "replace")}
    return fields, options


def parse_offer(data: bytes, source: str, xid: int) -> Offer | None:
    """An Offer if data is a DHCPOFFER answering transaction xid, else None."""
    try:
        fields, options = parse_packet(data)
    except (ValueError, struct.error):
        return None
    if fields["op"] != 2 or fields["xid"] != xid or options.get(53) != bytes([OFFER]):
        return None
    server = socket.inet_ntoa(options[54]) if len(options.get(54, b"")) == 4 else source
    file = fields["file"] or options.get(67, b"").split(b"\0", 1)[0].decode("ascii", "replace")
    return Offer(server, source, fields["yiaddr"], fields["siaddr"], file, options)


def discover(iface: str, *, timeout: float = 5.0, first_only: bool = False, ignore: set[str] = frozenset(),
             **packet_options) -> list[Offer]:
    """Broadcast one DHCPDISCOVER on iface and return the offers received within
    timeout seconds (from any server not in ignore; the first one only with
    first_only). Needs root (port 68, SO_BINDTODEVICE)."""
    mac = interface_mac(iface)
    xid = int.from_bytes(os.urandom(4), "big")
    packet = discover_packet(mac, xid, **packet_options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode() + b"\0")
            sock.bind(("0.0.0.0", 68))
        except PermissionError:
            raise UserError("probing for a DHCP server needs root (port 68 on one interface)",
                            hint="run it again as root") from None
        except OSError as e:
            raise UserError(f"cannot listen for DHCP answers on {iface}: {e.strerror}",
                            hint="check the interface is up (`ip link set IFACE up`)") from None
        offers: list[Offer] = []
        now = time.monotonic()
        deadline, next_send = now + timeout, now
        while (left := deadline - time.monotonic()) > 0:
            if not offers and time.monotonic() >= next_send:
                # Resent each second until someone answers, as DHCP clients do (a first
                # packet is often lost while a link comes up).
                sock.sendto(packet, ("255.255.255.255", 67))
                next_send = time.monotonic() + RESEND
            sock.settimeout(min(left, max(0.05, next_send - time.monotonic())) if not offers else left)
            try:
                data, (source, _port) = sock.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            offer = parse_offer(data, source, xid)
            if offer is None or offer.server in ignore or offer in offers:
                continue
            offers.append(offer)
            if first_only:
                break
        return offers
    finally:
        sock.close()


def dhcp_servers(iface: str, *, timeout: float = 5.0, ignore: set[str] = frozenset()) -> list[Offer]:
    """The DHCP servers that hand out addresses on iface (a plain, non-PXE
    discover, so proxy-DHCP servers such as this node's own do not answer)."""
    return [o for o in discover(iface, timeout=timeout, ignore=ignore) if not o.is_proxy]


def describe(offer: Offer) -> str:
    text = f"DHCP server {offer.server} offers {offer.yiaddr}" if not offer.is_proxy else \
        f"proxy-DHCP server {offer.server}"
    if offer.file:
        text += f", boot file {offer.file!r} from {offer.siaddr}"
    return text


def in_network(address: str, network: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)


def boot_menu_type(offer: Offer) -> int | None:
    """The first boot item type of a proxy offer's PXE menu (option 43, sub-option 9)."""
    data, i = offer.options.get(43, b""), 0
    while i + 1 < len(data) and data[i] != 255:
        code, length = data[i], data[i + 1]
        if code == 9 and length >= 2:
            return struct.unpack("!H", data[i + 2:i + 4])[0]
        i += 2 + length
    return None


def boot_request(iface: str, server: str, client_ip: str, *, timeout: float = 3.0, item: int | None = None,
                 **packet_options) -> Offer | None:
    """PXE boot server discovery as a PXE ROM does it after a proxy offer: a
    DHCPREQUEST from client_ip:68 to server:4011 (with the chosen menu item,
    if any); returns the DHCPACK (its `file` is the boot file) or None."""
    mac = interface_mac(iface)
    xid = int.from_bytes(os.urandom(4), "big")
    packet = bytearray(discover_packet(mac, xid, **packet_options))
    packet[10:12] = b"\0\0"                                   # unicast, no broadcast flag
    packet[12:16] = socket.inet_aton(client_ip)               # ciaddr
    packet[242] = 3                                           # option 53: DHCPREQUEST
    if item is not None:
        packet[-1:] = bytes([43, 7, 71, 4]) + struct.pack("!HH", item, 0) + b"\xff\xff"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.encode() + b"\0")
        sock.bind((client_ip, 68))
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while (left := deadline - time.monotonic()) > 0:
            if time.monotonic() >= next_send:
                sock.sendto(bytes(packet), (server, 4011))
                next_send = time.monotonic() + RESEND
            sock.settimeout(min(left, max(0.05, next_send - time.monotonic())))
            try:
                data, (source, _port) = sock.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            try:
                fields, options = parse_packet(data)
            except (ValueError, struct.error):
                continue
            if fields["xid"] == xid and options.get(53) == b"\x05":
                file = fields["file"] or options.get(67, b"").split(b"\0", 1)[0].decode()
                return Offer(server, source, fields["yiaddr"], fields["siaddr"], file, options)
        return None
    finally:
        sock.close()
