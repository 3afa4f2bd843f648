"""VM definitions: YAML files validated by vm.schema.json, loaded as frozen dataclasses."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from hypercore import names
from hypercore import schema as whole
from hypercore.cephuser import default_user
from hypercore.errors import UserError
from hypercore.files import write_atomic

SHARE_TAG = "hypercore_share"


@dataclass(frozen=True)
class FileDisk:
    path: str
    format: str  # qcow2 | raw
    owned: bool = False
    type: str = "file"

    @property
    def is_device(self) -> bool:
        """A whole block device (create-vm ... dev:/dev/DISK), not an image file."""
        return self.path.startswith("/dev/")

    def describe(self) -> str:
        return f"{self.path} ({'block device' if self.is_device else self.format})"


@dataclass(frozen=True)
class RbdDisk:
    pool: str
    image: str
    conf: str | None = None
    user: str = field(default_factory=default_user)
    owned: bool = False
    type: str = "rbd"
    namespace: str | None = None   # an RBD namespace of the pool (a diskless node's own)

    @property
    def spec(self) -> str:
        return f"{self.pool}/{self.namespace}/{self.image}" if self.namespace else f"{self.pool}/{self.image}"

    def describe(self) -> str:
        return f"rbd:{self.spec}" + (f":conf={self.conf}" if self.conf else "")


Disk = FileDisk | RbdDisk


@dataclass(frozen=True)
class Network:
    mode: str = "user"
    bridge: str | None = None
    tap: str | None = None
    mac: str | None = None


@dataclass(frozen=True)
class Shared:
    enabled: bool = False
    transport: str = "both"  # both | virtiofs | 9p

    @property
    def virtiofs(self) -> bool:
        return self.enabled and self.transport in ("both", "virtiofs")

    @property
    def ninep(self) -> bool:
        return self.enabled and self.transport in ("both", "9p")


@dataclass(frozen=True)
class Kernel:
    path: str
    initrd: str | None = None
    cmdline: str = ""


@dataclass(frozen=True)
class VMDefinition:
    name: str
    memory_mb: int
    cpus: int
    disks: tuple[Disk, ...] = ()
    iso: str | None = None
    firmware: str = "bios"
    accel: str = "auto"
    network: Network = field(default_factory=Network)
    shared: Shared = field(default_factory=Shared)
    kernel: Kernel | None = None

    @property
    def mac(self) -> str:
        """The NIC's MAC: the definition's, else a stable one from the name (QEMU's 52:54:00 prefix)."""
        if self.network.mac:
            return self.network.mac
        h = hashlib.sha256(self.name.encode()).digest()
        return "52:54:00:%02x:%02x:%02x" % (h[0], h[1], h[2])

    def to_dict(self) -> dict:
        d = asdict(self)
        d["disks"] = [{"type": x.type, **{k: v for k, v in asdict(x).items() if k != "type"}}
                      for x in self.disks]
        # Keep the file short and readable: drop unset optional values.
        d["network"] = {k: v for k, v in d["network"].items() if v is not None}
        if d["kernel"] is None:
            del d["kernel"]
        if d["iso"] is None:
            del d["iso"]
        return d

    def with_disks(self, disks) -> "VMDefinition":
        return replace(self, disks=tuple(disks))


@cache
def schema() -> dict:
    return json.loads(resources.files("hypercore").joinpath("vm.schema.json").read_text())


def _path(err: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in err.absolute_path) or "(top level)"


def _expand(err: jsonschema.ValidationError):
    """A disk that fits no oneOf branch: report the errors of the branch its 'type' asks for."""
    if err.validator == "oneOf" and isinstance(err.instance, dict) and err.context:
        wanted = err.instance.get("type")
        subs = [sub for sub in err.context
                if err.validator_value[sub.schema_path[0]].get("properties", {})
                .get("type", {}).get("const") == wanted and sub.validator != "const"]
        if subs:
            yield from subs
            return
        if wanted not in ("file", "rbd"):
            err.message = f"disk type must be 'file' or 'rbd', not {wanted!r}"
    yield err


def validate(data: object, origin: str = "definition") -> None:
    """Raise one UserError listing every schema error with its dotted path."""
    validator = whole.validator(schema())
    errors = [x for e in validator.iter_errors(data) for x in _expand(e)]
    errors.sort(key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"{_path(e)}: {e.message}" for e in errors]
        raise UserError(f"{origin} is not valid: " + "; ".join(lines),
                        hint="fix the listed fields (the schema is hypercore/vm.schema.json)")


def from_dict(data: dict, origin: str = "definition") -> VMDefinition:
    validate(data, origin)
    disks = []
    for d in data["disks"]:
        d = dict(d)
        kind = d.pop("type")
        disks.append(FileDisk(**d) if kind == "file" else RbdDisk(**d))
    kernel = data.get("kernel")
    return VMDefinition(
        name=data["name"],
        memory_mb=data["memory_mb"],
        cpus=data["cpus"],
        disks=tuple(disks),
        iso=data.get("iso"),
        firmware=data.get("firmware", "bios"),
        accel=data.get("accel", "auto"),
        network=Network(**data.get("network", {})),
        shared=Shared(**data.get("shared", {})),
        kernel=Kernel(**kernel) if kernel else None,
    )


def load(path: Path) -> VMDefinition:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no VM definition at {path}") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {e}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a VM definition (expected a mapping)")
    return from_dict(data, origin=str(path))


def save(defn: VMDefinition, path: Path) -> None:
    data = defn.to_dict()
    validate(data, origin=f"definition of {defn.name}")
    names.vm_name(defn.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "# Hypercore VM definition (schema: hypercore/vm.schema.json)\n"
                 + yaml.safe_dump(data, sort_keys=False))
