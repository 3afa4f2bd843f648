"""`hypercore vm console NAME`: the VM's serial console on this terminal.

QEMU serves the console on a UNIX socket (one client at a time) and logs
everything to run/console.log. Ctrl-] detaches.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import termios
import tty
from pathlib import Path

from hypercore.errors import UserError

ESCAPE = b"\x1d"  # Ctrl-]


def attach(sock_path: Path, name: str, stdin=None, stdout=None) -> None:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(sock_path))
    except OSError as e:
        raise UserError(f"cannot open the console of VM {name}: {e.strerror}",
                        hint=f"is it running? hypercore vm list (start it: boot-vm {name})") from None
    in_fd, out_fd = stdin.fileno(), stdout.fileno()
    is_tty = os.isatty(in_fd)
    saved = termios.tcgetattr(in_fd) if is_tty else None
    if is_tty:
        os.write(out_fd, f"Connected to the console of {name}; Ctrl-] detaches.\r\n".encode())
        tty.setraw(in_fd)
    try:
        stdin_open = True
        while True:
            fds = [s] + ([in_fd] if stdin_open else [])
            ready, _, _ = select.select(fds, [], [], None if stdin_open else 0.5)
            if not ready and not stdin_open:
                break  # stdin was a pipe and is done; nothing more came back
            if s in ready:
                data = s.recv(65536)
                if not data:
                    break
                os.write(out_fd, data)
            if in_fd in ready:
                data = os.read(in_fd, 4096)
                if not data:
                    stdin_open = False
                    continue
                if is_tty and ESCAPE in data:
                    data = data.split(ESCAPE, 1)[0]
                    if data:
                        s.sendall(data)
                    break
                s.sendall(data)
    finally:
        if saved is not None:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
            os.write(out_fd, b"\r\nDetached.\r\n")
        s.close()
