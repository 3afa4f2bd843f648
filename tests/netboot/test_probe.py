"""The probe's DHCP packets, byte by byte."""

from __future__ import annotations

import socket
import struct

from hypercore_netboot import probe

MAC = bytes.fromhex("525400123456")


def test_discover_is_a_broadcast_bootp_request_from_the_mac():
    pkt = probe.discover_packet(MAC, 0x11223344)
    op, htype, hlen, hops, xid, secs, flags = struct.unpack("!BBBBIHH", pkt[:12])
    assert (op, htype, hlen, hops, xid, secs, flags) == (1, 1, 6, 0, 0x11223344, 0, 0x8000)
    assert pkt[12:28] == bytes(16)                               # ciaddr, yiaddr, siaddr, giaddr
    assert pkt[28:44] == MAC + bytes(10)                         # chaddr
    assert pkt[44:236] == bytes(192)                             # sname, file
    assert pkt[236:240] == b"\x63\x82\x53\x63"
    fields, options = probe.parse_packet(pkt)
    assert options[53] == b"\x01" and options[61] == b"\x01" + MAC and 60 not in options and 93 not in options
    assert pkt.endswith(b"\xff")


def test_pxe_and_ipxe_clients():
    _, o = probe.parse_packet(probe.discover_packet(MAC, 1, arch=7))
    assert o[60] == b"PXEClient:Arch:00007:UNDI:002001" and o[93] == b"\x00\x07"
    assert o[94] == b"\x01\x02\x01" and len(o[97]) == 17
    _, o = probe.parse_packet(probe.discover_packet(MAC, 1, arch=0, ipxe=True))
    assert o[77] == b"iPXE" and 175 in o and o[93] == b"\x00\x00"


def offer_bytes(xid, yiaddr="10.0.0.50", server="10.0.0.1", file=b"", options=b""):
    pkt = bytearray(probe.discover_packet(MAC, xid))
    pkt[0] = 2
    pkt[16:20] = socket.inet_aton(yiaddr)
    pkt[20:24] = socket.inet_aton("10.0.0.1")
    pkt[108:108 + len(file)] = file
    return bytes(pkt[:240]) + b"\x35\x01\x02\x36\x04" + socket.inet_aton(server) + options + b"\xff"


def test_offers_are_parsed_and_others_ignored():
    offer = probe.parse_offer(offer_bytes(7, file=b"undionly.kpxe"), "10.0.0.1", 7)
    assert (offer.server, offer.yiaddr, offer.siaddr, offer.file, offer.is_proxy) == (
        "10.0.0.1", "10.0.0.50", "10.0.0.1", "undionly.kpxe", False)
    assert probe.describe(offer) == "DHCP server 10.0.0.1 offers 10.0.0.50, boot file 'undionly.kpxe' from 10.0.0.1"
    proxy = probe.parse_offer(offer_bytes(7, yiaddr="0.0.0.0", options=b"\x43\x08snp.efi\x00"), "10.0.0.2", 7)
    assert proxy.is_proxy and proxy.file == "snp.efi" and proxy.server == "10.0.0.1"
    assert probe.parse_offer(offer_bytes(8), "10.0.0.1", 7) is None          # another transaction
    assert probe.parse_offer(probe.discover_packet(MAC, 7), "10.0.0.1", 7) is None
    assert probe.parse_offer(b"junk", "10.0.0.1", 7) is None


def test_pxe_menu_item_type():
    menu = b"\x06\x01\x03\x09\x07\x80\x00\x04BIOS\xff"
    offer = probe.Offer("s", "s", "0.0.0.0", "0.0.0.0", "", {43: menu})
    assert probe.boot_menu_type(offer) == 0x8000
