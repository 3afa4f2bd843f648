"""Root file systems published for network boot from the golden-image
repository (`hypercore repo publish NAME@vN --netboot`): squashfs files in
HTTP_ROOT/roots/NAME@vN.squashfs. The menu offers one entry per file, booting
the same kernel and initramfs as the live system with that root.

menu_writer() rewrites the menu after a publish or unpublish, from the
installed answers' `netboot` section and the address the HTTP server serves on
(/etc/hypercore/netboot.env, written by apply); nothing else changes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from hypercore import digest
from hypercore.files import write_atomic

ROOTS = "roots"
FILE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]{0,62})@(?P<version>v[1-9][0-9]{0,8})\.squashfs$")
ANSWERS_ENV = "HYPERCORE_NETBOOT_ANSWERS"


@dataclass(frozen=True)
class Root:
    name: str
    version: str
    sha256: str | None = field(default=None, compare=False)   # of the served file, for the menu line

    @property
    def path(self) -> str:
        """Relative to the HTTP root (and its URL path)."""
        return f"{ROOTS}/{self.name}@{self.version}.squashfs"

    @property
    def label(self) -> str:
        """The iPXE menu item and label."""
        return f"root-{self.name}-{self.version}"


def published(http_root: str | os.PathLike, store: bool = True) -> list[Root]:
    """The roots in HTTP_ROOT/roots with their SHA-256 (recorded at publish; computed
    and, when store, recorded if missing), by name then version number (temporary
    files are hidden)."""
    d = Path(http_root) / ROOTS
    found = [FILE.fullmatch(p.name) for p in d.iterdir()] if d.is_dir() else []
    roots = [Root(m["name"], m["version"], digest.of(d / m.string, store)) for m in found if m]
    return sorted(roots, key=lambda r: (r.name, int(r.version[1:])))


def _served_address(env_file: str) -> str | None:
    try:
        text = Path(env_file).read_text()
    except FileNotFoundError:
        return None
    m = re.search(r"^NETBOOT_HTTP_BIND=(\S+)$", text, re.M)
    return m.group(1) if m else None


@dataclass(frozen=True)
class MenuWriter:
    """Everything the menu needs, read and checked before a publish changes anything."""

    paths: object                       # apply.Paths
    settings: object | None             # settings.Settings; None: network boot is not set up here
    server_ip: str | None

    def write(self) -> str:
        """Rewrite menu.ipxe (HTTP and TFTP roots) with the published roots; one line saying what happened."""
        from . import pins, render
        if self.settings is None:
            return (f"network boot is not set up on this node ({self.paths.env_file} is missing): "
                    "its menu will list the root once it is (hypercore-netboot apply)")
        roots = published(self.paths.http_root)
        menu = render.ipxe_menu(self.settings, self.server_ip, roots, pins.served(self.paths.http_root))
        for root in (self.paths.http_root, self.paths.tftp_root):
            os.makedirs(root, exist_ok=True)
            write_atomic(os.path.join(root, render.MENU), menu, 0o644)
        return f"the network boot menu lists {len(roots)} published root(s)"


def menu_writer(http_root: str | None = None, answers: str | None = None) -> MenuWriter:
    """The menu of the netboot configuration applied here (netboot.env names the served
    address; the installed answers the menu's settings)."""
    from .apply import Paths
    from .cli import DEFAULT_ANSWERS, load_settings

    paths = Paths.from_env(http_root=http_root)
    server_ip = _served_address(paths.env_file)
    if server_ip is None:
        return MenuWriter(paths, None, None)
    return MenuWriter(paths, load_settings(answers or os.environ.get(ANSWERS_ENV) or DEFAULT_ANSWERS), server_ip)
