"""The test network's switch (tests/hub.py): learning and flooding as pure
logic, then real UDP datagrams between three endpoints like QEMU's."""

from __future__ import annotations

import contextlib
import socket

from tests.hub import HOST, Switch

A, B, C = (bytes.fromhex(f"5254001234{n:02x}") for n in (0x56, 0x57, 0x58))
BROADCAST = b"\xff" * 6


def frame(dst: bytes, src: bytes, payload: bytes = b"x" * 46) -> bytes:
    return dst + src + b"\x08\x00" + payload


def test_unknown_and_broadcast_frames_flood_known_ones_go_to_one_port():
    sw = Switch()
    try:
        pa, pb, pc = ("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3)
        assert sw.forward(frame(BROADCAST, A), pa) == []           # alone on the segment
        assert sw.forward(frame(BROADCAST, B), pb) == [pa]
        assert sorted(sw.forward(frame(BROADCAST, C), pc)) == [pa, pb]
        assert sw.forward(frame(A, C), pc) == [pa]                  # learned: one port
        assert sw.forward(frame(C, A), pa) == [pc]
        assert sw.forward(frame(A, A), pa) == []                    # never back where it came from
        # A moves (the machine started again from another port): learned anew from its next frame.
        pa2 = ("127.0.0.1", 4)
        sw.forward(frame(BROADCAST, A), pa2)
        assert sw.forward(frame(A, B), pb) == [pa2]
        assert sw.forward(b"short", pb) == []
    finally:
        sw.close()


def _endpoint(switch: Switch) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.settimeout(5)
    s.connect((HOST, switch.port))
    return s


def test_three_endpoints_exchange_frames_through_the_switch():
    with contextlib.closing(Switch()) as sw:
        a, b, c = (_endpoint(sw) for _ in range(3))
        try:
            # Each announces itself (a broadcast, like a DHCP request), in turn.
            a.send(frame(BROADCAST, A, b"hello from a"))
            b.send(frame(BROADCAST, B, b"hello from b"))
            assert a.recv(2048).endswith(b"hello from b")
            c.send(frame(BROADCAST, C, b"hello from c"))
            assert a.recv(2048).endswith(b"hello from c") and b.recv(2048).endswith(b"hello from c")
            # Unicast to C reaches C only.
            a.send(frame(C, A, b"for c"))
            assert c.recv(2048).endswith(b"for c")
            b.settimeout(0.5)
            try:
                leaked = b.recv(2048)
            except socket.timeout:
                leaked = b""
            assert leaked == b""
            assert sw.frames == 4
        finally:
            for s in (a, b, c):
                s.close()
