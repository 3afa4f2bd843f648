"""One Ethernet segment shared by several QEMU processes, no root needed.

Each machine's NIC is a QEMU `dgram` netdev that sends its frames as UDP
datagrams from its own port on 127.0.0.1 to the switch's port. The switch
learns which port each source MAC address sent from, forwards a frame to
the port of its destination MAC, and floods broadcasts, multicasts and
unknown destinations to every other port it has seen. A machine that is
started again (new QEMU, maybe a new port) is learned anew from its first
frame. A point-to-point link between two QEMU processes cannot take a third
machine; this can (the scale-out tests run three appliances on it).
"""

from __future__ import annotations

import selectors
import socket
import threading

HOST = "127.0.0.1"


class Switch:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port: int = self.sock.getsockname()[1]
        self.macs: dict[bytes, tuple[str, int]] = {}    # source MAC -> the UDP address it came from
        self.ports: set[tuple[str, int]] = set()
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hub", daemon=True)
        self._thread.start()

    def nic(self) -> str:
        """A Machine NIC spec (QEMU -netdev) on this segment, from a port of its own."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        local = s.getsockname()[1]
        s.close()
        return (f"dgram,local.type=inet,local.host={HOST},local.port={local},"
                f"remote.type=inet,remote.host={HOST},remote.port={self.port}")

    def forward(self, frame: bytes, source: tuple[str, int]) -> list[tuple[str, int]]:
        """Learn the frame's source; the addresses it goes to."""
        if len(frame) < 14:
            return []
        self.ports.add(source)
        self.macs[frame[6:12]] = source
        dst = frame[0:6]
        known = None if dst[0] & 1 else self.macs.get(dst)     # group bit: broadcast or multicast
        if known is not None:
            return [] if known == source else [known]
        return [p for p in self.ports if p != source]

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            if not sel.select(timeout=0.5):
                continue
            try:
                frame, source = self.sock.recvfrom(65536)
            except OSError:
                continue
            self.frames += 1
            for addr in self.forward(frame, source):
                try:
                    self.sock.sendto(frame, addr)
                except OSError:
                    pass    # a machine that is gone; it is learned again when it sends

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
