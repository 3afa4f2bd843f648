"""Where the live system finds an answer file by itself, in this order:

1. the kernel command line: ``hypercore.answers=http(s)://...``, fetched with
   retries while the network comes up;
2. the systemd credential ``hypercore.answers`` (``$CREDENTIALS_DIRECTORY``,
   then the system credentials in /run/credentials/@system);
3. a filesystem labelled ``HYPERCORE`` holding ``hypercore-answers.yaml`` or
   ``answers.yaml``, mounted read-only for the moment of the copy.

`find_answers()` returns the first one found (a `Found`) or None. A source
that is present but broken (a URL that cannot be fetched, an empty
credential, a HYPERCORE filesystem without the file) is an error, never a
silent fall-through to the next source. ``hypercore.answers_sha256=HEX`` on
the kernel command line pins the file's SHA-256, whichever source it came from.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from hypercore.errors import UserError
from hypercore.run import CommandError, run

from .layout import ANSWERS_LABEL

URL_KEY = "hypercore.answers"
PIN_KEY = "hypercore.answers_sha256"
CREDENTIAL = "hypercore.answers"
SYSTEM_CREDENTIALS = Path("/run/credentials/@system")
LABEL = ANSWERS_LABEL
FILE_NAMES = ("hypercore-answers.yaml", "answers.yaml")
MAX_BYTES = 1024 * 1024          # an answer file is a few KiB
FETCH_DEADLINE = 120.0           # seconds of retries: the network may still be coming up
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
REBOOT_HINT = "then boot again"


@dataclass(frozen=True)
class Found:
    """An answer file and where it came from."""

    data: bytes
    where: str          # the URL, the credential's path, DEVICE:/FILE
    how: str            # "from the kernel command line (hypercore.answers=)", ...
    fix: str            # how to correct the file at its source
    sha256: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{self.where}: the answer file is not UTF-8 text (byte {e.start})",
                            hint=f"save it as UTF-8 (plain YAML text); {self.fix}") from None


@dataclass(frozen=True)
class Settings:
    """Where to look; every path is injectable for tests."""

    cmdline: Path = Path("/proc/cmdline")
    credentials_dir: Path | None = None      # None: $CREDENTIALS_DIRECTORY, else SYSTEM_CREDENTIALS
    label: str = LABEL
    fetch_deadline: float = FETCH_DEADLINE


# --- kernel command line ------------------------------------------------------

def split_cmdline(text: str) -> list[str]:
    """Words as the kernel splits them: whitespace outside double quotes; the
    quotes themselves are dropped (`a="b c"` is the word `a=b c`)."""
    words, cur, quoted, started = [], [], False, False
    for ch in text:
        if ch == '"':
            quoted, started = not quoted, True
        elif ch.isspace() and not quoted:
            if started:
                words.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if started:
        words.append("".join(cur))
    return words


def parse_cmdline(text: str) -> dict[str, str]:
    """key -> value of a kernel command line; the last occurrence wins; '-' and
    '_' in keys are the same (as systemd reads its own options); a word
    without '=' maps to ''."""
    out: dict[str, str] = {}
    for word in split_cmdline(text):
        key, _, value = word.partition("=")
        out[key.replace("-", "_")] = value
    return out


def read_cmdline(path: Path) -> dict[str, str]:
    try:
        return parse_cmdline(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        raise UserError(f"cannot read the kernel command line from {path}: {e.strerror}",
                        hint="run this on the live system (it reads /proc/cmdline)") from None


def answers_url(args: dict[str, str]) -> str | None:
    """The hypercore.answers= URL, checked; None when it is not given."""
    if URL_KEY not in args:
        return None
    url = args[URL_KEY].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        shown = url or "(empty)"
        raise UserError(f"{URL_KEY}={shown} on the kernel command line is not an http:// or https:// URL",
                        hint=f"write {URL_KEY}=http://SERVER/PATH/answers.yaml, or remove it to answer "
                             "the questions on the console; " + REBOOT_HINT)
    return url


def answers_pin(args: dict[str, str]) -> str | None:
    """The hypercore.answers_sha256= pin (lower-case hex), checked."""
    if PIN_KEY not in args:
        return None
    pin = args[PIN_KEY].strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", pin):
        raise UserError(f"{PIN_KEY}={args[PIN_KEY]} on the kernel command line is not a SHA-256 "
                        f"(64 hexadecimal digits; this is {len(pin)} characters)",
                        hint=f"compute it with `sha256sum answers.yaml` and copy the 64 digits; {REBOOT_HINT}")
    return pin


def check_pin(found: Found, pin: str | None) -> None:
    if pin is not None and found.sha256 != pin:
        raise UserError(
            f"the answer file {found.where} does not match {PIN_KEY}: expected {pin}, got {found.sha256}; "
            "refused, nothing was installed",
            hint=f"the file changed or the pin is wrong: pin the file you mean with `sha256sum FILE` "
                 f"on the kernel command line, or serve that file; {REBOOT_HINT}")


# --- 1. URL ---------------------------------------------------------------------

class _Permanent(Exception):
    """A fetch failure that retrying cannot fix."""

    def __init__(self, reason: str, hint: str):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """exc and every exception it wraps (causes, contexts, urllib3 reasons, args)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None)]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]


def describe_error(exc: BaseException, url: str) -> tuple[str, str]:
    """(what went wrong, how to fix it) for a failed request, in words."""
    host = urlsplit(url).hostname or "?"
    port = urlsplit(url).port or (443 if url.startswith("https:") else 80)
    chain = [e for e in _chain(exc) if isinstance(e, BaseException)]
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return ("connection refused",
                f"nothing answers on {host} port {port}: start the web server there, or correct the host "
                f"and port in {URL_KEY}=")
    if any(isinstance(e, socket.gaierror) for e in chain):
        return (f"cannot resolve the host name {host}",
                "check the name, or write the server's IP address in the URL")
    if isinstance(exc, requests.ConnectTimeout):
        return (f"no connection within {CONNECT_TIMEOUT:.0f} s",
                "check that the server is reachable from this network (cable, VLAN, firewall)")
    if isinstance(exc, requests.Timeout):
        return (f"no answer within {READ_TIMEOUT:.0f} s", "check the web server")
    for e in chain:
        if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            what = "network is unreachable" if e.errno == errno.ENETUNREACH else f"host {host} is unreachable"
            return (what, "check the cable and that the live system got an address "
                          "(`ip address` on the serial console)")
    return (str(exc).splitlines()[0][:200] or type(exc).__name__,
            "check the URL and the server")


def _read_body(response: requests.Response, url: str) -> bytes:
    data = b""
    for chunk in response.iter_content(64 * 1024):
        data += chunk
        if len(data) > MAX_BYTES:
            raise _Permanent(f"the file is larger than {MAX_BYTES // 1024} KiB, not an answer file",
                             "check the URL: it must point at the YAML answer file itself")
    return data


def _get(url: str) -> bytes:
    """One attempt. Transient failures raise requests exceptions, permanent ones _Permanent."""
    try:
        with requests.get(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), stream=True) as r:
            if r.status_code >= 400:
                reason = f"HTTP {r.status_code} {r.reason}".rstrip()
                if r.status_code >= 500 or r.status_code in (408, 429):
                    raise requests.HTTPError(reason, response=r)
                hint = ("the server has no file at that path: check the path in the URL"
                        if r.status_code in (404, 410) else "the server refuses the request: check its access rules")
                raise _Permanent(reason, hint + " (test it from another machine: curl -fsS URL)")
            return _read_body(r, url)
    except requests.exceptions.SSLError as e:
        raise _Permanent(f"TLS error: {str(e).splitlines()[0][:200]}",
                         "the live system does not trust the server's certificate: use one from a public CA, "
                         f"or http:// with {PIN_KEY}= to pin the file") from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as e:
        raise _Permanent(f"invalid URL: {e}", f"correct {URL_KEY}=") from None


def fetch(url: str, *, deadline: float = FETCH_DEADLINE, out: Callable[[str], None] = print,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> bytes:
    """GET url, retrying connection failures, timeouts and HTTP 5xx with a
    growing pause (1, 2, 4, 8, 15 s ...) for about `deadline` seconds. Each
    failed attempt is one line on `out`; the end is a UserError naming the URL
    and the last error."""
    start = clock()
    pause = 1.0
    attempt = 0
    fix = f"; {REBOOT_HINT} (the kernel command line can be edited in the boot menu: e)"
    while True:
        attempt += 1
        try:
            return _get(url)
        except _Permanent as e:
            out(f"  fetching {url}: attempt {attempt} failed: {e.reason}; not retried")
            raise UserError(f"cannot fetch the answer file {url}: {e.reason}", hint=e.hint + fix) from None
        except requests.RequestException as e:
            reason, hint = describe_error(e, url) if not isinstance(e, requests.HTTPError) else \
                (str(e), "the web server has a problem: check its log")
        elapsed = clock() - start
        if elapsed + pause > deadline:
            out(f"  fetching {url}: attempt {attempt} failed: {reason}; giving up")
            raise UserError(f"cannot fetch the answer file {url}: {reason} "
                            f"(gave up after {attempt} attempt{'s' if attempt != 1 else ''} in {elapsed:.0f} s)",
                            hint=hint + fix)
        out(f"  fetching {url}: attempt {attempt} failed: {reason}; retrying in {pause:.0f} s")
        sleep(pause)
        pause = min(pause * 2, 15.0)


def from_url(url: str, settings: Settings, out: Callable[[str], None] = print) -> Found:
    out(f"Fetching the answer file {url} (from the kernel command line) ...")
    data = fetch(url, deadline=settings.fetch_deadline, out=out)
    return Found(data, url, f"from the kernel command line ({URL_KEY}=)",
                 f"fix the file on the web server, {REBOOT_HINT}")


# --- 2. systemd credential ----------------------------------------------------

def credentials_dirs(settings: Settings) -> list[Path]:
    """Where the credential may be: the given directory; else the service's
    $CREDENTIALS_DIRECTORY (LoadCredential=) and then the system credentials
    themselves (when run by hand, or should LoadCredential= not have copied it)."""
    if settings.credentials_dir is not None:
        return [settings.credentials_dir]
    env = os.environ.get("CREDENTIALS_DIRECTORY")
    return [Path(env), SYSTEM_CREDENTIALS] if env else [SYSTEM_CREDENTIALS]


def _read_limited(path: Path, shown: str, fix: str) -> bytes:
    """The file's bytes; `shown` names it in errors (the operator's name for it)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise UserError(f"cannot read {shown}: {e.strerror}", hint=fix) from None
    if len(data) > MAX_BYTES:
        raise UserError(f"{shown} is larger than {MAX_BYTES // 1024} KiB, not an answer file", hint=fix)
    if not data.strip():
        raise UserError(f"{shown} is empty", hint=fix)
    return data


def from_credential(settings: Settings) -> Found | None:
    path = next((d / CREDENTIAL for d in credentials_dirs(settings) if (d / CREDENTIAL).exists()), None)
    if path is None:
        return None
    data = _read_limited(path, f"the credential {CREDENTIAL} ({path})",
                         f"pass the YAML answer file as the credential {CREDENTIAL}, {REBOOT_HINT}")
    return Found(data, str(path), f"from the systemd credential {CREDENTIAL}",
                 f"correct the file passed as the credential {CREDENTIAL}, {REBOOT_HINT}")


# --- 3. filesystem labelled HYPERCORE -------------------------------------------

def parse_blkid_export(text: str) -> list[dict[str, str]]:
    """`blkid -o export` output: one KEY=value block per device."""
    devices, cur = [], {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur:
                devices.append(cur)
            cur = {}
            continue
        key, _, value = line.partition("=")
        cur[key] = value.replace("\\ ", " ")
    return devices


def labelled(label: str) -> list[tuple[str, str | None]]:
    """(device, filesystem type) of every filesystem labelled `label`, in any case."""
    try:
        proc = run(["blkid", "-c", "/dev/null", "-o", "export"], check=False, timeout=120)
    except CommandError as e:
        raise UserError(f"cannot look for a filesystem labelled {label}: {e}",
                        hint="a disk may be failing: check `dmesg` on the serial console") from None
    if proc.returncode not in (0, 2):       # 2: nothing could be identified
        raise UserError(f"cannot look for a filesystem labelled {label}: blkid exited with {proc.returncode}: "
                        f"{(proc.stderr or '').strip()}", hint="check `dmesg` on the serial console")
    return [(d["DEVNAME"], d.get("TYPE")) for d in parse_blkid_export(proc.stdout)
            if "DEVNAME" in d and d.get("LABEL", "").casefold() == label.casefold()]


@contextlib.contextmanager
def mounted_read_only(device: str, fstype: str | None, label: str) -> Iterator[Path]:
    """device mounted read-only (no journal replay, nothing executable) on a
    private temporary directory; unmounted and removed afterwards."""
    point = tempfile.mkdtemp(prefix="hypercore-answers-")
    options = "ro,nosuid,nodev,noexec" + (",noload" if fstype in ("ext3", "ext4") else "")
    argv = ["mount", "-o", options, *(["-t", fstype] if fstype else []), device, point]
    try:
        run(argv)
    except CommandError as e:
        os.rmdir(point)
        raise UserError(f"cannot mount {device} (labelled {label}, {fstype or 'unknown type'}) read-only: "
                        f"{(e.stderr or '').strip() or e}",
                        hint="check that filesystem on another machine (FAT or ext4 are safe choices)") from None
    try:
        yield Path(point)
    finally:
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "--lazy", point], check=False)
        with contextlib.suppress(OSError):
            os.rmdir(point)


def from_label(settings: Settings, out: Callable[[str], None] = print) -> Found | None:
    label = settings.label
    found = labelled(label)
    if not found:
        return None
    if len(found) > 1:
        raise UserError(f"{len(found)} filesystems are labelled {label}: {', '.join(d for d, _ in found)}; "
                        "the answers must come from exactly one",
                        hint="unplug the extra medium or rename the other labels (fatlabel DEV NAME, "
                             f"e2label DEV NAME), {REBOOT_HINT}")
    device, fstype = found[0]
    fix = f"correct {FILE_NAMES[0]} on the filesystem labelled {label} (on another machine), {REBOOT_HINT}"
    with mounted_read_only(device, fstype, label) as point:
        present = [n for n in FILE_NAMES if (point / n).is_file()]
        if not present:
            names = sorted(os.listdir(point))
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "nothing"
            raise UserError(f"the filesystem labelled {label} on {device} holds no {FILE_NAMES[0]} or "
                            f"{FILE_NAMES[1]} (it holds: {shown})",
                            hint=f"copy the answer file onto it as {FILE_NAMES[0]} (check that no .txt was "
                                 f"added to the name), or remove the label to answer the questions on the "
                                 f"console; {REBOOT_HINT}")
        if len(present) > 1:
            out(f"  {device} holds both {FILE_NAMES[0]} and {FILE_NAMES[1]}: using {FILE_NAMES[0]}")
        where = f"{device}:/{present[0]}"
        data = _read_limited(point / present[0], f"the answer file {where}", fix)
    return Found(data, where, f"from the filesystem labelled {label}", fix)


# --- all together ---------------------------------------------------------------

def find_answers(settings: Settings, out: Callable[[str], None] = print) -> Found | None:
    """The first answer file found, in the order URL, credential, label; the
    SHA-256 pin checked. None when there is none anywhere."""
    args = read_cmdline(settings.cmdline)
    url, pin = answers_url(args), answers_pin(args)
    found = from_url(url, settings, out) if url else None
    if found is None:
        found = from_credential(settings)
    if found is None:
        found = from_label(settings, out)
    if found is not None:
        check_pin(found, pin)
    return found


def looked_at(settings: Settings) -> str:
    """Where find_answers looked, for the 'nothing found' message."""
    return (f"the kernel command line ({URL_KEY}=URL), the systemd credential {CREDENTIAL} "
            f"({', '.join(map(str, credentials_dirs(settings)))}), a filesystem labelled {settings.label}")
