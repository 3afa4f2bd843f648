"""A fake QEMU monitor on a UNIX socket, for unit tests of QMP exchanges (no QEMU)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path


class FakeQMP:
    """Serves QMP (greeting + replies from `answers`) or, with agent=True, the guest agent.

    answers: command -> return value, or a callable(arguments) -> return value,
    or an Exception instance for an error reply. `received` lists every
    (command, arguments) in order. An `events` list is sent before the first reply.
    """

    def __init__(self, path: Path, answers: dict, agent: bool = False, events=()):
        self.path = Path(path)
        self.answers = answers
        self.agent = agent
        self.events = list(events)
        self.received: list[tuple[str, dict]] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        f = conn.makefile("rwb")
        if not self.agent:
            f.write(b'{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}}\n')
            f.flush()
        for line in f:
            msg = json.loads(line)
            cmd, args = msg["execute"], msg.get("arguments", {})
            self.received.append((cmd, args))
            if cmd == "qmp_capabilities":
                reply = {"return": {}}
            elif cmd == "guest-sync":
                reply = {"return": args["id"]}
            elif cmd == "guest-shutdown":
                continue  # the real agent sends nothing back
            elif cmd in self.answers:
                ans = self.answers[cmd]
                ans = ans(args) if callable(ans) else ans
                reply = ({"error": {"class": "GenericError", "desc": str(ans)}}
                         if isinstance(ans, Exception) else {"return": ans})
            else:
                reply = {"error": {"class": "CommandNotFound", "desc": f"The command {cmd} has not been found"}}
            for ev in self.events:
                f.write(json.dumps(ev).encode() + b"\n")
            self.events = []
            f.write(json.dumps(reply).encode() + b"\n")
            f.flush()

    def commands(self) -> list[str]:
        return [c for c, _ in self.received]

    def close(self) -> None:
        self.server.close()
