"""The netboot HTTP server tells systemd it is ready only once it listens
(Type=notify), so `systemctl is-active` means clients can connect."""

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.netboot.netns import repo_env

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ready_notification_comes_after_the_socket_listens(tmp_path):
    (tmp_path / "menu.ipxe").write_text("#!ipxe\n")
    notify = tmp_path / "notify"
    port = free_port()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(notify))
        listener.settimeout(30)
        proc = subprocess.Popen([PY, "-m", "hypercore_netboot.http", "--root", str(tmp_path),
                                 "--port", str(port), "--bind", "127.0.0.1"],
                                env={**os.environ, **repo_env(), "NOTIFY_SOCKET": str(notify)},
                                stderr=subprocess.PIPE, text=True)
        try:
            assert listener.recv(64) == b"READY=1"
            # No retry: at READY the port must already accept connections.
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/menu.ipxe", timeout=10) as r:
                assert r.read() == b"#!ipxe\n"
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_busy_port_fails_without_notifying(tmp_path):
    notify = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener, socket.socket() as busy:
        listener.bind(str(notify))
        listener.setblocking(False)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([PY, "-m", "hypercore_netboot.http", "--root", str(tmp_path),
                               "--port", str(port), "--bind", "127.0.0.1"],
                              env={**os.environ, **repo_env(), "NOTIFY_SOCKET": str(notify)},
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
        assert "Traceback" not in proc.stderr
        try:
            got = listener.recv(64)
        except BlockingIOError:
            got = b""
        assert got == b""
