"""Installing over the network, from the image an appliance keeps.

An appliance installed with `netboot.enabled` keeps the Hypercore image it was
installed from in its netboot HTTP root: `hypercore.raw`, and
`hypercore.raw.json` describing its partitions (what the planner reads from a
USB stick's partition table). A machine network-booted from that appliance
with `hypercore.source=URL` on its kernel command line installs from the URL
exactly as from a stick; only the copy streams over HTTP.

Nothing fetched is used unchecked: the menu line also carries
`hypercore.source_json_sha256=` (the description) and
`hypercore.source_sha256=` (the image; the description holds it too). The
image is hashed as it streams onto the disk, its first MiB (the protective
MBR and the GPT) held back until the digest matches: a truncated or altered
download leaves the disk without a partition table, never a half-written
system that boots.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from hypercore.digest import is_sha256
from hypercore.errors import UserError

SOURCE_KEY = "hypercore.source"
SHA_KEY = "hypercore.source_sha256"
JSON_SHA_KEY = "hypercore.source_json_sha256"
IMAGE_NAME = "hypercore.raw.zst"       # the kept image, zstd-compressed (hypercore.raw inside)
FORMAT = 1
NOT_KEPT = ("the appliance keeps its image for network installs only when it was installed "
            "with `netboot.enabled: true`")
CHUNK = 4 << 20
HEAD = 1 << 20          # written last: MBR, GPT header and entries
MENU_HINT = ("boot the appliance menu's install entry (it carries the SHA-256s), or give "
             "--source-sha256 with --source-disk URL")


@dataclass(frozen=True)
class Pins:
    """The SHA-256s a network install checks: the image's and its description's."""

    image: str | None = None
    description: str | None = None


def _pin(value: str | None, key: str) -> str | None:
    if value is None:
        return None
    pin = value.strip().lower()
    if not is_sha256(pin):
        raise UserError(f"{key}={value} is not a SHA-256 (64 hexadecimal digits; this is {len(pin)} characters)",
                        hint=MENU_HINT)
    return pin


def pins(image: str | None = None, description: str | None = None, path: str = "/proc/cmdline") -> Pins:
    """The given pins (command-line options), else those on the kernel command line."""
    from pathlib import Path
    from .sources import read_cmdline
    args = {}
    if image is None and description is None:
        try:
            args = read_cmdline(Path(path))
        except UserError:
            args = {}
    return Pins(_pin(image if image is not None else args.get(SHA_KEY), SHA_KEY),
                _pin(description if description is not None else args.get(JSON_SHA_KEY), JSON_SHA_KEY))


def from_cmdline(path: str = "/proc/cmdline") -> str | None:
    """hypercore.source=URL from the kernel command line (the netboot menu's install entry)."""
    from pathlib import Path
    from .sources import read_cmdline
    try:
        url = read_cmdline(Path(path)).get(SOURCE_KEY)
    except UserError:
        return None
    return url if is_url(url) else None


def is_url(path: str | None) -> bool:
    return bool(path) and path.startswith(("http://", "https://"))


def description(source: dict, sha256: str | None = None) -> dict:
    """What hypercore.raw.json holds: the source as the planner saw it, and the
    SHA-256 of the image's bytes once known."""
    doc = {"format": FORMAT,
           "source": {k: v for k, v in source.items() if k not in ("path", "name", "why", "sha256")}}
    if sha256:
        doc["sha256"] = sha256
    return doc


def _get(url: str, *, stream: bool = False, tries: int = 3):
    import requests
    last = None
    for attempt in range(tries):
        try:
            r = requests.get(url, timeout=30, stream=stream)
            if r.status_code == 404:
                raise UserError(f"{url} does not exist (HTTP 404)", hint=NOT_KEPT)
            r.raise_for_status()
            return r
        except requests.RequestException as e:
            last = e
            time.sleep(2 * (attempt + 1))
    raise UserError(f"cannot fetch {url}: {last}",
                    hint="check the network and that the appliance serves network boot "
                         "(systemctl status hypercore-netboot-http on it)")


def describe_url(url: str, pinned: Pins = Pins()) -> dict:
    """The installation source at url (from url.json, checked against its pin),
    for the planner; its "sha256" is what the image must hash to."""
    r = _get(url + ".json")
    got = hashlib.sha256(r.content).hexdigest()
    if pinned.description and got != pinned.description:
        raise UserError(f"{url}.json does not match {JSON_SHA_KEY} from the boot menu: expected "
                        f"{pinned.description}, got {got}; refused, nothing was written",
                        hint="the file changed on the appliance or was altered on the way: run "
                             "`hypercore-netboot apply` on the appliance and boot the install entry again")
    try:
        doc = r.json()
        source = dict(doc["source"])
        ok = doc.get("format") == FORMAT and all(k in source for k in ("partitions", "esp", "root", "image_bytes"))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise UserError(f"{url}.json does not describe a Hypercore image (format {FORMAT})",
                        hint="the appliance and this system come from different Hypercore versions; "
                             "install from a USB stick instead")
    listed = doc.get("sha256") if pinned.description else None       # trusted only when pinned
    if pinned.image and listed and listed != pinned.image:
        raise UserError(f"{url}.json gives the image's SHA-256 as {listed}, the boot menu ({SHA_KEY}) as "
                        f"{pinned.image}; refused, nothing was written",
                        hint="the menu is older than the image: run `hypercore-netboot apply` on the appliance")
    sha256 = pinned.image or listed
    if not is_sha256(sha256):
        raise UserError(f"no SHA-256 for the image {url}: the kernel command line has no {SHA_KEY}= "
                        f"(or {JSON_SHA_KEY}= of a description that holds it)", hint=MENU_HINT)
    source.update(path=url, name=url.rsplit("/", 1)[-1], why="the network", sha256=sha256)
    return source


def _write_all(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _zero_ends(fd: int) -> None:
    """Zero the disk's first and last MiB: no partition table (primary or backup) is left."""
    size = os.lseek(fd, 0, os.SEEK_END)
    for offset in {0, max(0, size - HEAD)}:
        _write_all(fd, bytes(min(HEAD, size)), offset)
    os.fsync(fd)


class _Hashed:
    """The response's bytes as a file for the zstd decompressor, hashed as they are read."""

    def __init__(self, response):
        self._chunks = response.iter_content(CHUNK)
        self._buf = b""
        self.sha = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return b""
        out, self._buf = (self._buf, b"") if size < 0 else (self._buf[:size], self._buf[size:])
        self.sha.update(out)
        self.bytes += len(out)
        return out


def _pieces(url: str, h: _Hashed):
    """The image's bytes from the download h: zstd-decompressed for a .zst
    (bounded pieces, whatever the ratio), else as they come."""
    if url.endswith(".zst"):
        import zstandard
        yield from zstandard.ZstdDecompressor().read_to_iter(h, read_size=CHUNK, write_size=CHUNK)
    else:
        yield from iter(lambda: h.read(CHUNK), b"")


def download(url: str, target: str, nbytes: int, sha256: str, say) -> None:
    """Stream the image at url (hypercore.raw.zst: zstd, decompressed on the
    way) onto target (a disk): nbytes of image, the downloaded bytes hashed as
    they come; its first MiB is written only once the whole download matched
    sha256. On a short or altered stream the disk's first and last MiB stay
    zero (no partition table) and a UserError says so."""
    import requests
    import zstandard
    fd = os.open(target, os.O_WRONLY)
    try:
        _zero_ends(fd)
        r = _get(url, stream=True)
        done, last_report, head = 0, time.monotonic(), bytearray()
        h = _Hashed(r)
        broken = ""
        try:
            for chunk in _pieces(url, h):
                chunk = chunk[: nbytes - done]
                keep = chunk[: max(0, HEAD - done)]
                head += keep
                _write_all(fd, chunk[len(keep):], done + len(keep))
                done += len(chunk)
                if time.monotonic() - last_report > 30:
                    say(f"    {done * 100 // nbytes}% ({done >> 20} of {nbytes >> 20} MiB; "
                        f"{h.bytes >> 20} MiB downloaded)")
                    last_report = time.monotonic()
            while h.read(CHUNK):                   # the whole download counts for its digest
                pass
        except requests.RequestException as e:
            broken = f" ({str(e).splitlines()[0][:120]})"
        except zstandard.ZstdError as e:
            broken = f" (not a whole zstd stream: {str(e)[:120]})"
        finally:
            r.close()
        os.fsync(fd)
        left = f"{target} was left without a partition table (nothing bootable was written)"
        if done != nbytes:
            raise UserError(f"the download of {url} stopped after {done} of {nbytes} bytes{broken}; {left}",
                            hint="run the install again; it starts the copy over")
        got = h.sha.hexdigest()
        if got != sha256:
            raise UserError(f"the image {url} does not match {SHA_KEY} from the boot menu: expected {sha256}, "
                            f"got {got}; {left}",
                            hint="the download was damaged, or the image changed on the appliance: run the "
                                 "install again; if it fails again, run `hypercore-netboot apply` on the "
                                 "appliance and boot its install entry again")
        _write_all(fd, head, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
