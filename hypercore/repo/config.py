"""/etc/hypercore/repo.yaml: this node's role and its peers (repo.schema.json)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from hypercore import schema as whole
from hypercore.errors import UserError

DEFAULT = "/etc/hypercore/repo.yaml"
ENV = "HYPERCORE_REPO_CONFIG"


@dataclass(frozen=True)
class Peer:
    name: str
    address: str                 # user@host
    port: int = 22
    role: str = "image-server"
    identity_file: str | None = None
    repo_dir: str | None = None
    ssh_options: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        return f"{self.address} port {self.port}"


@dataclass(frozen=True)
class Config:
    path: str
    role: str = "image-server"
    peers: tuple[Peer, ...] = ()

    def peer(self, name: str) -> Peer:
        for p in self.peers:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.peers) or "none"
        raise UserError(f"unknown peer {name!r} (known: {known})",
                        hint=f"add it to the peers in {self.path}")


@cache
def schema() -> dict:
    return json.loads(resources.files("hypercore.repo").joinpath("repo.schema.json").read_text())


def problems(data: object) -> list[tuple[list, str]]:
    """Every problem of a repo.yaml document: (path as a list of keys and indexes, message)."""
    errors = sorted(whole.validator(schema()).iter_errors(data),
                    key=lambda e: list(map(str, e.absolute_path)))
    out = [(list(e.absolute_path), e.message) for e in errors]
    if isinstance(data, dict) and isinstance(data.get("peers"), list):
        seen: set[str] = set()
        for i, p in enumerate(data["peers"]):
            n = p.get("name") if isinstance(p, dict) else None
            if n in seen:
                out.append((["peers", i, "name"], f"{n!r} is used twice"))
            seen.add(n)
    return out


def validate(data: object, origin: str) -> None:
    """One UserError listing every problem with its dotted path."""
    lines = [f"{'.'.join(map(str, path)) or '(top level)'}: {msg}" for path, msg in problems(data)]
    if lines:
        raise UserError(f"{origin} is not valid: " + "; ".join(lines),
                        hint="fix the listed fields (the schema is hypercore/repo/repo.schema.json)")


def from_dict(data: dict, origin: str) -> Config:
    validate(data, origin)
    peers = tuple(Peer(**{**p, "ssh_options": tuple(p.get("ssh_options", ()))}) for p in data.get("peers", []))
    return Config(path=origin, role=data.get("role", "image-server"), peers=peers)


def load(path: str | None = None) -> Config:
    """The config at path, $HYPERCORE_REPO_CONFIG or /etc/hypercore/repo.yaml; none at all: no peers."""
    p = Path(path or os.environ.get(ENV) or DEFAULT)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        return Config(path=str(p))
    except yaml.YAMLError as e:
        raise UserError(f"{p} is not valid YAML: {e}".splitlines()[0],
                        hint="fix the file (see hypercore/repo/repo.schema.json)") from None
    if data is None:
        return Config(path=str(p))
    return from_dict(data, str(p))
