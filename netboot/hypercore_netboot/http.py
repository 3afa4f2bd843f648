"""A small read-only HTTP server for network-boot clients: serves the files of
one directory (GET and HEAD only, no directory listings, nothing outside the
root, never a file that holds key material), one thread per connection, one
log line per request on stderr; and takes join requests (joinhttp).

    python3 -m hypercore_netboot.http --root /var/lib/hypercore/netboot --port 8067 --bind 192.168.50.1

Defaults come from NETBOOT_HTTP_ROOT, NETBOOT_HTTP_PORT and NETBOOT_HTTP_BIND
(the environment file /etc/hypercore/netboot.env that `hypercore-netboot
apply` writes for hypercore-netboot-http.service).

A client cannot hold the server: a request's line and headers must arrive
within --header-timeout seconds (30; a connection kept open between requests
too), a connection that moves no data for --idle-timeout seconds (60) is
closed, and at most --max-connections (64) are served at once -- one more
gets `503` and is closed at once.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import sys
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from hypercore import keymaterial

from . import HTTP_PORT, HTTP_ROOT, joinhttp

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
HEADER_TIMEOUT = 30.0   # seconds for a request line and its headers
IDLE_TIMEOUT = 60.0     # seconds without progress while a file is sent
MAX_CONNECTIONS = 64
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
        b"Retry-After: 1\r\n\r\n")


def key_material(path: str) -> str | None:
    """What key material a small file holds (None: none, or a big binary such as the image)."""
    try:
        if os.path.getsize(path) > keymaterial.SCAN_LIMIT:
            return None
        with open(path, "rb") as f:
            return keymaterial.found_in(f.read())
    except OSError:
        return None


class Handler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler without directory listings or index pages."""

    server_version = "hypercore-netboot"
    sys_version = ""

    def do_GET(self):
        if joinhttp.handles(self.path):
            return joinhttp.get(self, self.server.join_dir)
        return super().do_GET()

    def do_HEAD(self):
        if joinhttp.handles(self.path):
            return joinhttp.get(self, self.server.join_dir)
        return super().do_HEAD()

    def do_POST(self):
        return joinhttp.post(self, self.server.join_dir)

    def handle_one_request(self):
        """The request line and headers within the server's header_timeout, in
        total (a client that sends a byte now and then is cut off too); then
        the server's idle_timeout for each send."""
        timer = threading.Timer(self.server.header_timeout, self._cut)
        timer.daemon = True
        self._reading_head = True
        self.connection.settimeout(self.server.header_timeout)
        timer.start()
        try:
            super().handle_one_request()
        except OSError:                             # timed out, cut, or the client went away
            self.close_connection = True
        finally:
            timer.cancel()

    def parse_request(self):
        ok = super().parse_request()
        self._reading_head = False                  # headers complete (or refused): the timer is moot
        self.connection.settimeout(self.server.idle_timeout)
        return ok

    def _cut(self) -> None:
        if self._reading_head:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def send_head(self):
        path = self.translate_path(self.path)
        root = os.path.realpath(self.directory)
        real = os.path.realpath(path)
        if os.path.isdir(path) or not (real == root or real.startswith(root + os.sep)):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        what = key_material(real)
        if what:
            self.log_message("refused %s: it holds %s, and this network is the client network", self.path, what)
            self.send_error(HTTPStatus.FORBIDDEN, "This file holds key material and is never served")
            return None
        return super().send_head()

    def list_directory(self, path):           # never reached; kept closed on purpose
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None

    def copyfile(self, source, outputfile):
        try:
            self.connection.sendfile(source)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def log_message(self, format, *args):
        sys.stderr.write(f"{self.client_address[0]} {format % args}\n")

    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        self.log_message('"%s" %s %s', self.requestline, code, size)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    join_dir = None                 # where join requests are kept (None: POST is refused)
    request_queue_size = 128
    header_timeout = HEADER_TIMEOUT
    idle_timeout = IDLE_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args, **kw):
        self._active = 0
        self._lock = threading.Lock()
        super().__init__(*args, **kw)

    def process_request(self, request, client_address):
        """A thread for the connection, or (over max_connections) 503 and close, at once."""
        with self._lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            try:
                request.setblocking(False)
                request.send(BUSY)
            except OSError:
                pass
            sys.stderr.write(f"{client_address[0]} refused: {self.max_connections} connections already\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._active -= 1

    def server_bind(self):
        # Bind even before networkd has put the address on the interface.
        if self.address_family == socket.AF_INET:
            self.socket.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        super().server_bind()


def make_server(root: str, port: int, bind: str = "0.0.0.0", header_timeout: float = HEADER_TIMEOUT,
                idle_timeout: float = IDLE_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                join_dir=None) -> Server:
    """A bound, not yet serving server (port 0 picks a free port: server.server_address).
    join_dir: keep join requests there (POST /join/requests; see joinhttp)."""
    server = Server((bind, port), functools.partial(Handler, directory=os.fspath(root)))
    server.header_timeout, server.idle_timeout = header_timeout, idle_timeout
    server.max_connections = max_connections
    server.join_dir = join_dir
    return server


def serve_in_thread(root: str, port: int = 0, bind: str = "127.0.0.1", **options) -> Server:
    """For tests and embedding: serve in a daemon thread; call shutdown() to stop.
    options: header_timeout, idle_timeout, max_connections, join_dir (make_server)."""
    server = make_server(root, port, bind, **options)
    threading.Thread(target=server.serve_forever, name="netboot-http", daemon=True).start()
    return server


def notify_ready() -> bool:
    """Tell systemd (Type=notify) the socket is listening; False outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):                 # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(b"READY=1")
    return True


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, not {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 10000, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m hypercore_netboot.http",
                                 description="Serve one directory read-only over HTTP to network-boot clients.")
    ap.add_argument("--root", default=os.environ.get("NETBOOT_HTTP_ROOT", HTTP_ROOT),
                    help=f"directory to serve (default $NETBOOT_HTTP_ROOT or {HTTP_ROOT})")
    ap.add_argument("--port", type=int, default=int(os.environ.get("NETBOOT_HTTP_PORT", HTTP_PORT)),
                    help=f"TCP port (default $NETBOOT_HTTP_PORT or {HTTP_PORT})")
    ap.add_argument("--bind", default=os.environ.get("NETBOOT_HTTP_BIND", "0.0.0.0"),
                    help="address to listen on (default $NETBOOT_HTTP_BIND or every address)")
    ap.add_argument("--join-dir", default=os.environ.get("NETBOOT_JOIN_DIR") or None,
                    help="take join requests and keep them here (default $NETBOOT_JOIN_DIR; none: refused)")
    ap.add_argument("--header-timeout", type=_seconds, default=HEADER_TIMEOUT, metavar="SECONDS",
                    help=f"time a client has for a request line and its headers (default {HEADER_TIMEOUT:.0f})")
    ap.add_argument("--idle-timeout", type=_seconds, default=IDLE_TIMEOUT, metavar="SECONDS",
                    help=f"a connection that moves no data this long is closed (default {IDLE_TIMEOUT:.0f})")
    ap.add_argument("--max-connections", type=_count, default=MAX_CONNECTIONS, metavar="N",
                    help=f"connections served at once; more get 503 (default {MAX_CONNECTIONS})")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.root):
        print(f"hypercore-netboot-http: {args.root} is not a directory", file=sys.stderr)
        print("  hint: run `hypercore-netboot apply`, or give --root", file=sys.stderr)
        return 1
    try:
        server = make_server(args.root, args.port, args.bind, args.header_timeout, args.idle_timeout,
                             args.max_connections, args.join_dir)
    except OSError as e:
        print(f"hypercore-netboot-http: cannot listen on {args.bind}:{args.port}: {e.strerror}", file=sys.stderr)
        print("  hint: another program uses the port (ss -ltnp), or change netboot.http_port", file=sys.stderr)
        return 1
    print(f"serving {args.root} on http://{args.bind}:{args.port}/", file=sys.stderr, flush=True)
    notify_ready()          # "active" means clients can connect, not merely "started"
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
