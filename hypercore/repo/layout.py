"""Where the repository lives, how versions are named, one lock per name."""

from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hypercore import names
from hypercore.errors import UserError

DEFAULT = "/var/lib/hypercore/images/repo"
ENV = "HYPERCORE_REPO_DIR"
SUBVOL = "snapshot"
VERSION = re.compile(r"^v([1-9][0-9]{0,8})$")


def resolve(option: str | None) -> "Repo":
    """--repo-dir, else $HYPERCORE_REPO_DIR, else /var/lib/hypercore/images/repo."""
    return Repo(Path(option or os.environ.get(ENV) or DEFAULT).absolute())


def image_name(value: str) -> str:
    return names.image_name(value)


def version(value: str) -> str:
    """'v3' (or '3') -> 'v3'; anything else is a UserError."""
    if isinstance(value, str) and value.isdigit():
        value = f"v{value}"
    if not isinstance(value, str) or not VERSION.fullmatch(value):
        raise UserError(f"invalid version {value!r}", hint="versions are v1, v2, ... (see: hypercore repo list NAME)")
    return value


def number(v: str) -> int:
    return int(version(v)[1:])


def sort_versions(versions) -> list[str]:
    return sorted(versions, key=number)


def next_version(existing) -> str:
    return f"v{max((number(v) for v in existing), default=0) + 1}"


def split_ref(ref: str) -> tuple[str, str | None]:
    """'NAME@v2' -> ('NAME', 'v2'); 'NAME' -> ('NAME', None). Both checked."""
    name, _, ver = ref.partition("@")
    return image_name(name), (version(ver) if ver else None)


@dataclass(frozen=True)
class Repo:
    root: Path

    @property
    def incoming(self) -> Path:
        return self.root / ".incoming"

    def name_dir(self, name: str) -> Path:
        return self.root / name

    def version_dir(self, name: str, v: str) -> Path:
        return self.root / name / v

    def subvol(self, name: str, v: str) -> Path:
        return self.version_dir(name, v) / SUBVOL

    def holds(self, name: str, v: str) -> Path:
        return self.version_dir(name, v) / "holds"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if not p.name.startswith(".") and p.is_dir() and names.IMAGE_NAME.fullmatch(p.name))

    def versions(self, name: str) -> list[str]:
        """The complete versions of name, oldest first (staging is never listed)."""
        d = self.name_dir(name)
        if not d.is_dir():
            return []
        return sort_versions(p.name for p in d.iterdir()
                             if VERSION.fullmatch(p.name) and (p / SUBVOL).is_dir())

    def require_version(self, name: str, v: str | None) -> str:
        """v, or the newest version of name when v is None; a UserError when missing."""
        have = self.versions(name)
        if not have:
            raise UserError(f"the repository has no image named {name!r}",
                            hint="see: hypercore repo list (add one: hypercore repo add NAME FILE)")
        if v is None:
            return have[-1]
        if v not in have:
            raise UserError(f"{name} has no version {v}", hint=f"it has: {', '.join(have)}")
        return v

    def staging(self, name: str, v: str, why: str) -> Path:
        """A fresh hidden staging directory for name@v."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        d = self.incoming / f"{name}.{v}.{why}.{os.getpid()}"
        d.mkdir()
        return d

    def stale_staging(self, name: str) -> list[Path]:
        if not self.incoming.is_dir():
            return []
        return sorted(p for p in self.incoming.iterdir() if p.name.startswith(f"{name}."))


@contextmanager
def locked(repo: Repo, name: str, wait: float = 0):
    """One command at a time changes name (add, receive, prune); wait: seconds to wait for it."""
    d = repo.root / ".locks"
    d.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with open(d / f"{name}.lock", "w") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UserError(f"another hypercore repo command is working on {name}",
                                    hint="wait for it to finish and try again") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
