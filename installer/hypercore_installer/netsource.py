"""Installing over the network, from the image an appliance keeps.

An appliance installed with `netboot.enabled` keeps the Hypercore image it was
installed from in its netboot HTTP root: `hypercore.raw`, and
`hypercore.raw.json` describing its partitions (what the planner reads from a
USB stick's partition table). A machine network-booted from that appliance
with `hypercore.source=URL` on its kernel command line installs from the URL
exactly as from a stick; only the copy streams over HTTP.
"""

from __future__ import annotations

import os
import time

from hypercore.errors import UserError

SOURCE_KEY = "hypercore.source"
IMAGE_NAME = "hypercore.raw"
FORMAT = 1
NOT_KEPT = ("the appliance keeps its image for network installs only when it was installed "
            "with `netboot.enabled: true`")
CHUNK = 4 << 20


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


def description(source: dict) -> dict:
    """What hypercore.raw.json holds: the source as the planner saw it."""
    return {"format": FORMAT,
            "source": {k: v for k, v in source.items() if k not in ("path", "name", "why")}}


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


def describe_url(url: str) -> dict:
    """The installation source at url (from url.json), for the planner."""
    r = _get(url + ".json")
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
    source.update(path=url, name=url.rsplit("/", 1)[-1], why="the network")
    return source


def download(url: str, target: str, nbytes: int, say) -> None:
    """Stream the first nbytes of url onto target (a disk), then flush it."""
    r = _get(url, stream=True)
    done, last_report = 0, time.monotonic()
    fd = os.open(target, os.O_WRONLY)
    try:
        for chunk in r.iter_content(CHUNK):
            chunk = chunk[: nbytes - done]
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            done += len(chunk)
            if time.monotonic() - last_report > 30:
                say(f"    {done * 100 // nbytes}% ({done >> 20} of {nbytes >> 20} MiB)")
                last_report = time.monotonic()
            if done >= nbytes:
                break
        os.fsync(fd)
    finally:
        os.close(fd)
        r.close()
    if done != nbytes:
        raise UserError(f"the download of {url} stopped after {done} of {nbytes} bytes",
                        hint="run the install again; it starts the copy over")
