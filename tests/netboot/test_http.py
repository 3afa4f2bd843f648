"""The netboot HTTP server tells systemd it is ready only once it listens
(Type=notify), so `systemctl is-active` means clients can connect; a client
cannot hold it (header timeout, connection cap), real sockets on 127.0.0.1."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hypercore_netboot.http import serve_in_thread
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


def _connect(server) -> socket.socket:
    return socket.create_connection(server.server_address, timeout=10)


def _closed_within(s: socket.socket, seconds: float) -> float:
    """Seconds until the server closes s (reads until EOF or reset); fails after `seconds`."""
    start = time.monotonic()
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {seconds} s") from None
    return time.monotonic() - start


def test_a_client_that_sends_no_headers_is_dropped_after_the_header_timeout(tmp_path):
    (tmp_path / "menu.ipxe").write_text("#!ipxe\n")
    server = serve_in_thread(str(tmp_path), header_timeout=1)
    try:
        start = time.monotonic()
        silent, trickle = _connect(server), _connect(server)
        trickle.sendall(b"GET /menu.ipxe HTTP/1.1\r\n")        # then a header byte now and then
        while time.monotonic() - start < 0.8:
            trickle.sendall(b"X")
            time.sleep(0.2)
        _closed_within(silent, 5)
        assert 0.9 < time.monotonic() - start < 3
        _closed_within(trickle, 5)                             # the total time counts, not each byte
        assert time.monotonic() - start < 3
        # A client that sends its request is served.
        url = f"http://127.0.0.1:{server.server_address[1]}/menu.ipxe"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == b"#!ipxe\n"
    finally:
        server.shutdown()
        server.server_close()


def test_over_the_connection_cap_a_new_client_is_refused_at_once(tmp_path):
    (tmp_path / "menu.ipxe").write_text("#!ipxe\n")
    server = serve_in_thread(str(tmp_path), header_timeout=30, max_connections=3)
    held = []
    try:
        held = [_connect(server) for _ in range(3)]               # silent: each holds a slot
        time.sleep(0.3)                                            # accepted and counted
        extra = _connect(server)
        start = time.monotonic()
        extra.settimeout(5)
        assert extra.recv(64).startswith(b"HTTP/1.0 503 ")
        assert _closed_within(extra, 5) + (time.monotonic() - start) < 2
        # A slot freed is a slot for the next client.
        held.pop().close()
        time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/menu.ipxe", timeout=10) as r:
            assert r.read() == b"#!ipxe\n"
    finally:
        for s in held:
            s.close()
        server.shutdown()
        server.server_close()


def test_the_limits_are_options(tmp_path):
    from hypercore_netboot import http
    proc = subprocess.run([PY, "-m", "hypercore_netboot.http", "--help"], env={**os.environ, **repo_env()},
                          capture_output=True, text=True, timeout=30)
    assert all(o in proc.stdout for o in ("--header-timeout", "--idle-timeout", "--max-connections"))
    assert (http.HEADER_TIMEOUT, http.MAX_CONNECTIONS) == (30, 64)
    proc = subprocess.run([PY, "-m", "hypercore_netboot.http", "--root", str(tmp_path), "--max-connections", "0"],
                          env={**os.environ, **repo_env()}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "expected a whole number from 1 to 10000" in proc.stderr
