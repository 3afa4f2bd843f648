"""Where `hypercore-install auto` finds its answers: the kernel command line,
the order of the sources, a real HTTP server on 127.0.0.1 (success, pin
mismatch, 404, 5xx retried, connection refused), a systemd credential, and
blkid's output."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from hypercore.errors import UserError
from hypercore_installer import sources
from hypercore_installer.sources import Found, Settings, parse_cmdline, split_cmdline

ANSWERS = b"hostname: node1\n"
SHA = hashlib.sha256(ANSWERS).hexdigest()


# --- a real HTTP server -------------------------------------------------------

class Server:
    """http.server in a thread; `routes` maps a path to a list of (status,
    body) answers given in turn (the last one repeats)."""

    def __init__(self):
        self.routes: dict[str, list[tuple[int, bytes]]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                answers = server.routes.get(self.path) or [(404, b"not here\n")]
                status, body = answers[min(server.hits[self.path], len(answers)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    s = Server()
    yield s
    s.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeTime:
    """A clock that sleep() advances: retries without waiting."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- kernel command line --------------------------------------------------------

def test_split_cmdline_keeps_quoted_spaces_and_drops_quotes():
    assert split_cmdline('BOOT_IMAGE=/vmlinuz  root=PARTUUID=ab rw quiet a="b c" "d=e f"\n') == [
        "BOOT_IMAGE=/vmlinuz", "root=PARTUUID=ab", "rw", "quiet", "a=b c", "d=e f"]
    assert split_cmdline("   ") == []
    assert split_cmdline('x=""') == ["x="]


def test_parse_cmdline_last_wins_and_dashes_are_underscores():
    args = parse_cmdline("console=tty0 hypercore.answers=http://a/1.yaml hypercore.answers=http://b/2.yaml "
                         "hypercore.answers-sha256=ABC rw")
    assert args["hypercore.answers"] == "http://b/2.yaml"
    assert args["hypercore.answers_sha256"] == "ABC"
    assert args["rw"] == "" and args["console"] == "tty0"


def test_url_and_pin_from_the_command_line():
    assert sources.answers_url(parse_cmdline("quiet")) is None
    assert sources.answers_url(parse_cmdline("hypercore.answers=https://srv:8443/a?x=1")) == "https://srv:8443/a?x=1"
    assert sources.answers_pin(parse_cmdline(f"hypercore.answers_sha256={SHA.upper()}")) == SHA
    for bad in ("hypercore.answers=ftp://srv/a.yaml", "hypercore.answers=/answers.yaml", "hypercore.answers="):
        with pytest.raises(UserError) as e:
            sources.answers_url(parse_cmdline(bad))
        assert "is not an http:// or https:// URL" in e.value.message
        assert e.value.hint.startswith("write hypercore.answers=http://SERVER/PATH/answers.yaml")
    with pytest.raises(UserError) as e:
        sources.answers_pin(parse_cmdline("hypercore.answers_sha256=abc123"))
    assert e.value.message == ("hypercore.answers_sha256=abc123 on the kernel command line is not a SHA-256 "
                               "(64 hexadecimal digits; this is 6 characters)")


# --- the order of the sources ---------------------------------------------------

@pytest.fixture
def no_label(monkeypatch):
    """The label source, replaced: records that it was asked."""
    asked = []

    def fake(settings, out=print):
        asked.append(settings.label)
        return None
    monkeypatch.setattr(sources, "from_label", fake)
    return asked


def _cmdline(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cmdline"
    p.write_text(text + "\n")
    return p


def _creds(tmp_path: Path, data: bytes | None) -> Path:
    d = tmp_path / "creds"
    d.mkdir(exist_ok=True)
    if data is not None:
        (d / "hypercore.answers").write_bytes(data)
    return d


def test_the_url_comes_first(server, tmp_path, no_label):
    server.routes["/a.yaml"] = [(200, ANSWERS)]
    settings = Settings(cmdline=_cmdline(tmp_path, f"quiet hypercore.answers={server.url('/a.yaml')}"),
                        credentials_dir=_creds(tmp_path, b"hostname: from-credential\n"), label="X")
    found = sources.find_answers(settings, out=lambda _: None)
    assert (found.data, found.where) == (ANSWERS, server.url("/a.yaml"))
    assert found.how == "from the kernel command line (hypercore.answers=)"
    assert no_label == []


def test_the_credential_comes_before_the_label(tmp_path, no_label):
    settings = Settings(cmdline=_cmdline(tmp_path, "quiet"), credentials_dir=_creds(tmp_path, ANSWERS), label="X")
    found = sources.find_answers(settings)
    assert found.data == ANSWERS and found.how == "from the systemd credential hypercore.answers"
    assert found.where == str(tmp_path / "creds" / "hypercore.answers")
    assert no_label == []


def test_the_label_is_last_and_nothing_found_is_none(tmp_path, no_label):
    settings = Settings(cmdline=_cmdline(tmp_path, "quiet"), credentials_dir=_creds(tmp_path, None), label="X")
    assert sources.find_answers(settings) is None
    assert no_label == ["X"]


def test_a_broken_url_does_not_fall_through_to_the_other_sources(tmp_path, no_label):
    port = closed_port()
    settings = Settings(cmdline=_cmdline(tmp_path, f"hypercore.answers=http://127.0.0.1:{port}/a.yaml"),
                        credentials_dir=_creds(tmp_path, ANSWERS), label="X", fetch_deadline=0)
    with pytest.raises(UserError, match="connection refused"):
        sources.find_answers(settings, out=lambda _: None)
    assert no_label == []


def test_the_pin_applies_to_every_source(tmp_path, no_label):
    settings = Settings(cmdline=_cmdline(tmp_path, f"hypercore.answers_sha256={'0' * 64}"),
                        credentials_dir=_creds(tmp_path, ANSWERS), label="X")
    with pytest.raises(UserError) as e:
        sources.find_answers(settings)
    assert f"expected {'0' * 64}, got {SHA}" in e.value.message
    ok = Settings(cmdline=_cmdline(tmp_path, f"hypercore.answers_sha256={SHA}"),
                  credentials_dir=settings.credentials_dir, label="X")
    assert sources.find_answers(ok).sha256 == SHA


def test_unreadable_cmdline(tmp_path):
    with pytest.raises(UserError, match=r"cannot read the kernel command line from .*/missing"):
        sources.find_answers(Settings(cmdline=tmp_path / "missing"))


# --- 1. URL against a real server ---------------------------------------------

def test_fetch_success(server):
    server.routes["/node1.yaml"] = [(200, ANSWERS)]
    lines: list[str] = []
    found = sources.from_url(server.url("/node1.yaml"), Settings(), out=lines.append)
    assert found.data == ANSWERS and found.sha256 == SHA
    assert lines == [f"Fetching the answer file {server.url('/node1.yaml')} (from the kernel command line) ..."]


def test_fetch_with_a_matching_pin_and_a_mismatch(server, tmp_path, no_label):
    server.routes["/a.yaml"] = [(200, ANSWERS)]
    url = server.url("/a.yaml")
    good = Settings(cmdline=_cmdline(tmp_path, f"hypercore.answers={url} hypercore.answers_sha256={SHA}"),
                    credentials_dir=_creds(tmp_path, None))
    assert sources.find_answers(good, out=lambda _: None).data == ANSWERS
    wrong = "ab" * 32
    bad = Settings(cmdline=_cmdline(tmp_path, f"hypercore.answers={url} hypercore.answers_sha256={wrong}"),
                   credentials_dir=_creds(tmp_path, None))
    with pytest.raises(UserError) as e:
        sources.find_answers(bad, out=lambda _: None)
    assert e.value.message == (f"the answer file {url} does not match hypercore.answers_sha256: "
                               f"expected {wrong}, got {SHA}; refused, nothing was installed")
    assert "sha256sum FILE" in e.value.hint


def test_fetch_404_is_not_retried(server):
    lines: list[str] = []
    t = FakeTime()
    url = server.url("/missing.yaml")
    with pytest.raises(UserError) as e:
        sources.fetch(url, deadline=120, out=lines.append, sleep=t.sleep, clock=t.clock)
    assert e.value.message == f"cannot fetch the answer file {url}: HTTP 404 Not Found"
    assert e.value.hint.startswith("the server has no file at that path: check the path in the URL "
                                   "(test it from another machine: curl -fsS URL); then boot again (the kernel command "
                                   "line can be edited in the boot menu: e)")
    assert lines == [f"  fetching {url}: attempt 1 failed: HTTP 404 Not Found; not retried"]
    assert server.hits["/missing.yaml"] == 1 and t.sleeps == []


def test_fetch_retries_a_server_error_then_succeeds(server):
    server.routes["/a.yaml"] = [(503, b"busy"), (503, b"busy"), (200, ANSWERS)]
    lines: list[str] = []
    t = FakeTime()
    url = server.url("/a.yaml")
    assert sources.fetch(url, out=lines.append, sleep=t.sleep, clock=t.clock) == ANSWERS
    assert lines == [f"  fetching {url}: attempt 1 failed: HTTP 503 Service Unavailable; retrying in 1 s",
                     f"  fetching {url}: attempt 2 failed: HTTP 503 Service Unavailable; retrying in 2 s"]
    assert t.sleeps == [1, 2]


def test_fetch_connection_refused_retries_with_backoff_until_the_deadline():
    url = f"http://127.0.0.1:{closed_port()}/a.yaml"
    lines: list[str] = []
    t = FakeTime()
    with pytest.raises(UserError) as e:
        sources.fetch(url, deadline=20, out=lines.append, sleep=t.sleep, clock=t.clock)
    assert t.sleeps == [1, 2, 4, 8]                 # then 15 + 15 s would pass the 20 s
    assert lines == [f"  fetching {url}: attempt {n} failed: connection refused; retrying in {p} s"
                     for n, p in ((1, 1), (2, 2), (3, 4), (4, 8))] + [
        f"  fetching {url}: attempt 5 failed: connection refused; giving up"]
    assert e.value.message == (f"cannot fetch the answer file {url}: connection refused "
                               "(gave up after 5 attempts in 15 s)")
    assert e.value.hint.startswith(f"nothing answers on 127.0.0.1 port {url.split(':')[2].split('/')[0]}: "
                                   "start the web server there")


def test_fetch_connection_refused_in_real_time_is_bounded():
    import time
    url = f"http://127.0.0.1:{closed_port()}/a.yaml"
    lines: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(UserError, match=r"connection refused \(gave up after 2 attempts in 1 s\)"):
        sources.fetch(url, deadline=2.5, out=lines.append)
    assert len(lines) == 2 and time.monotonic() - t0 < 3


def test_fetch_unknown_host_names_the_host():
    url = "http://no-such-host.invalid/a.yaml"
    lines: list[str] = []
    t = FakeTime()
    with pytest.raises(UserError) as e:
        sources.fetch(url, deadline=0, out=lines.append, sleep=t.sleep, clock=t.clock)
    assert e.value.message == (f"cannot fetch the answer file {url}: cannot resolve the host name "
                               "no-such-host.invalid (gave up after 1 attempt in 0 s)")


def test_fetch_refuses_a_huge_file(server):
    server.routes["/big"] = [(200, b"x" * (sources.MAX_BYTES + 10))]
    with pytest.raises(UserError, match="larger than 1024 KiB, not an answer file"):
        sources.fetch(server.url("/big"), out=lambda _: None)


# --- 2. credential -------------------------------------------------------------

def test_credential_from_credentials_directory(tmp_path, monkeypatch):
    d = _creds(tmp_path, ANSWERS)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(d))
    found = sources.from_credential(Settings())
    assert found.data == ANSWERS and found.where == str(d / "hypercore.answers")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "empty"))
    assert sources.from_credential(Settings()) is None


def test_credential_directories(monkeypatch, tmp_path):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert sources.credentials_dirs(Settings()) == [Path("/run/credentials/@system")]
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert sources.credentials_dirs(Settings()) == [tmp_path, Path("/run/credentials/@system")]
    assert sources.credentials_dirs(Settings(credentials_dir=tmp_path / "x")) == [tmp_path / "x"]


def test_credential_falls_back_to_the_system_credentials(monkeypatch, tmp_path):
    system = _creds(tmp_path, ANSWERS)
    monkeypatch.setattr(sources, "SYSTEM_CREDENTIALS", system)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "service"))
    assert sources.from_credential(Settings()).where == str(system / "hypercore.answers")


def test_empty_credential_is_an_error(tmp_path):
    d = _creds(tmp_path, b"\n  \n")
    with pytest.raises(UserError) as e:
        sources.from_credential(Settings(credentials_dir=d))
    assert e.value.message == f"the credential hypercore.answers ({d / 'hypercore.answers'}) is empty"


def test_answers_that_are_not_utf8():
    found = Found(b"hostname: n\xff\n", "/x", "from somewhere", "fix it")
    with pytest.raises(UserError, match=r"/x: the answer file is not UTF-8 text \(byte 11\)"):
        found.text()


# --- 3. label: blkid's output -------------------------------------------------

BLKID = """\
DEVNAME=/dev/sdc1
LABEL=ESP
TYPE=vfat

DEVNAME=/dev/sdc3
LABEL=hypercore-root
TYPE=ext4

DEVNAME=/dev/sdd1
LABEL=hypercore
TYPE=vfat

DEVNAME=/dev/sde1
LABEL=My\\ Disk
TYPE=ntfs
"""


def test_parse_blkid_export():
    devices = sources.parse_blkid_export(BLKID)
    assert [d["DEVNAME"] for d in devices] == ["/dev/sdc1", "/dev/sdc3", "/dev/sdd1", "/dev/sde1"]
    assert devices[3]["LABEL"] == "My Disk"


def test_labelled_matches_the_label_in_any_case(monkeypatch):
    import subprocess

    calls = []

    def fake_run(argv, **kw):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, BLKID, "")
    monkeypatch.setattr(sources, "run", fake_run)
    assert sources.labelled("HYPERCORE") == [("/dev/sdd1", "vfat")]
    assert calls == [["blkid", "-c", "/dev/null", "-o", "export"]]


def test_two_labelled_filesystems_are_refused(monkeypatch):
    monkeypatch.setattr(sources, "labelled", lambda label: [("/dev/sdd1", "vfat"), ("/dev/sde1", "ext4")])
    with pytest.raises(UserError) as e:
        sources.from_label(Settings())
    assert e.value.message == ("2 filesystems are labelled HYPERCORE: /dev/sdd1, /dev/sde1; "
                               "the answers must come from exactly one")
