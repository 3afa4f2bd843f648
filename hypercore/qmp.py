"""QMP (the QEMU monitor protocol) and the guest agent protocol, over UNIX sockets.

Both are newline-delimited JSON. QMP: a greeting, then qmp_capabilities, then
commands; asynchronous events may arrive between replies and are kept in
``events``. The guest agent has no greeting; a guest-sync with a random id
tells whether an agent is there at all (nothing answers when it is not).
"""

from __future__ import annotations

import json
import logging
import random
import socket
import time
from pathlib import Path

log = logging.getLogger("hypercore.qmp")


class QMPError(Exception):
    """QEMU answered a command with an error."""

    def __init__(self, command: str, error: dict):
        self.command = command
        self.error_class = error.get("class", "GenericError")
        super().__init__(f"{command}: {error.get('desc', error)}")


class _JsonLines:
    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.sock.settimeout(timeout)
        self._buf = b""

    def send(self, obj: dict) -> None:
        log.debug("-> %s", obj)
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def recv(self, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout if timeout is not None else self.sock.gettimeout())
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        line = line.strip().lstrip(b"\xff")  # the agent's sync delimiter
        if not line:
            return self.recv(timeout)
        obj = json.loads(line)
        log.debug("<- %s", obj)
        return obj

    def close(self) -> None:
        self.sock.close()


def _connect(path: Path, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


class QMP:
    """A QMP session. ``QMP.connect(path)`` or ``QMP(sock)`` for an open socket."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0):
        self._io = _JsonLines(sock, timeout)
        self.events: list[dict] = []
        greeting = self._io.recv()
        if "QMP" not in greeting:
            raise ConnectionError(f"not a QMP greeting: {greeting}")
        self.version = greeting["QMP"].get("version", {})
        self.execute("qmp_capabilities")

    @classmethod
    def connect(cls, path: Path, timeout: float = 10.0) -> "QMP":
        return cls(_connect(path, timeout), timeout)

    def execute(self, command: str, **arguments):
        msg: dict = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._io.send(msg)
        while True:
            reply = self._io.recv()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise QMPError(command, reply["error"])
            return reply.get("return")

    def close(self) -> None:
        self._io.close()

    def __enter__(self) -> "QMP":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GuestAgent:
    """The qemu-guest-agent channel (virtio-serial port org.qemu.guest_agent.0)."""

    def __init__(self, sock: socket.socket, timeout: float = 2.0):
        self._io = _JsonLines(sock, timeout)
        self.timeout = timeout

    @classmethod
    def connect(cls, path: Path, timeout: float = 2.0) -> "GuestAgent":
        return cls(_connect(path, timeout), timeout)

    def sync(self) -> bool:
        """True when an agent answers; flushes stale replies from earlier sessions."""
        token = random.randrange(1, 2**31)
        try:
            self._io.send({"execute": "guest-sync", "arguments": {"id": token}})
            deadline = time.monotonic() + self.timeout
            while (left := deadline - time.monotonic()) > 0:
                if self._io.recv(left).get("return") == token:
                    return True
        except (TimeoutError, ConnectionError, OSError, ValueError):
            return False
        return False

    def execute(self, command: str, **arguments):
        msg: dict = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._io.send(msg)
        reply = self._io.recv()
        if "error" in reply:
            raise QMPError(command, reply["error"])
        return reply.get("return")

    def shutdown(self) -> None:
        """guest-shutdown sends no reply on success: send it and leave."""
        self._io.send({"execute": "guest-shutdown", "arguments": {"mode": "powerdown"}})

    def close(self) -> None:
        self._io.close()

    def __enter__(self) -> "GuestAgent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
