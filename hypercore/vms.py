"""Creating, starting, listing and deleting VMs (the definitions and their disks)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from hypercore import (definition, diskspec, host, hostdisks, images, names, rbd_claims, shared, storage,
                       supervisor, vmuser)
from hypercore import storage_file as sf
from hypercore import storage_rbd as sr
from hypercore.accel import detect
from hypercore.cephuser import default_namespace
from hypercore.definition import FileDisk, Kernel, Network, RbdDisk, Shared, VMDefinition
from hypercore.errors import UserError
from hypercore.qemu_argv import OVMF_VARS_TEMPLATE
from hypercore.qmp import QMP
from hypercore.sizes import human
from hypercore.state import StateDir


@dataclass(frozen=True)
class CreateOptions:
    iso: str | None = None
    firmware: str = "bios"
    accel: str = "auto"
    network: Network = Network()
    shared: Shared = Shared()
    kernel: Kernel | None = None
    storage: str | None = None  # auto | rbd | file, for new:SIZE


def load(state: StateDir, name: str) -> VMDefinition:
    names.vm_name(name)
    if not state.definition(name).is_file():
        raise UserError(f"no VM named {name!r}", hint="list them: hypercore vm list")
    return definition.load(state.definition(name))


def _check_file(what: str, path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path).absolute()
    if not p.is_file():
        raise UserError(f"{what} {p} does not exist", hint=f"give the path of an existing {what}")
    return str(p)


def create(state: StateDir, name: str, memory_mb: int, cpus: int, disk_arg: str,
           opts: CreateOptions) -> list[str]:
    """Check everything, then create the disk, then write the definition."""
    names.vm_name(name)
    if state.vm_dir(name).exists():
        raise UserError(f"VM {name} already exists",
                        hint=f"start it with boot-vm {name}, or delete it: hypercore vm delete {name}")
    host.check_resources(memory_mb, cpus, host.limits())
    iso = _check_file("ISO image", opts.iso)
    kernel = None
    if opts.kernel:
        kernel = Kernel(path=_check_file("kernel", opts.kernel.path),
                        initrd=_check_file("initrd", opts.kernel.initrd), cmdline=opts.kernel.cmdline)

    spec = diskspec.parse(disk_arg)
    messages = []
    placeholder = FileDisk(path=str(state.vm_dir(name) / "disk0.qcow2"), format="qcow2", owned=True)
    defn = VMDefinition(name=name, memory_mb=memory_mb, cpus=cpus, disks=(placeholder,), iso=iso,
                        firmware=opts.firmware, accel=opts.accel, network=opts.network,
                        shared=opts.shared, kernel=kernel)
    definition.validate(defn.to_dict(), origin=f"VM {name}")
    if opts.shared.virtiofs:
        shared.find_virtiofsd()

    # Only now is anything created.
    try:
        if isinstance(spec, RbdDisk):
            sr.require_image(spec)
            disk = spec
            messages.append(f"disk: existing RBD image {spec.spec}")
        elif isinstance(spec, diskspec.ExistingFile):
            fmt = sf.detect_format(spec.path)
            hostdisks.check_file(state, spec.path, [] if fmt == "raw" else storage.backing_files(
                FileDisk(path=str(spec.path), format=fmt)))
            disk = FileDisk(path=str(spec.path), format=fmt)
            messages.append(f"disk: existing {fmt} file {spec.path}")
        elif isinstance(spec, diskspec.ExistingDevice):
            dev = hostdisks.check_device(spec.path)
            users = [d.name for d in all_definitions(state) for x in d.disks
                     if isinstance(x, FileDisk) and x.path == str(dev)]
            if users:
                raise UserError(f"block device {dev} is already the disk of VM {users[0]}",
                                hint=f"one VM per disk: hypercore vm delete {users[0]} first")
            disk = FileDisk(path=str(dev), format="raw")
            messages.append(f"disk: whole block device {dev}")
        elif isinstance(spec, diskspec.FromImage):
            img = images.require(state, spec.image)
            state.vm_dir(name).mkdir(parents=True)
            disk = images.linked_disk(img, name, 0, state)
            messages.append(f"disk: linked clone of image {img.name} ({disk.describe()})")
        else:
            backend = storage.choose(opts.storage)
            if backend.name == "rbd":
                pool = sr.pool_of_new_disks()
                disk = RbdDisk(pool=pool, image=f"{name}-disk0", owned=True, namespace=default_namespace())
                if sr.image_info(disk.spec) is not None:
                    raise UserError(f"RBD image {disk.spec} already exists",
                                    hint=f"use it: create-vm {name} {memory_mb} {cpus} rbd:{disk.spec}")
                state.vm_dir(name).mkdir(parents=True)
                sr.rbd(sr.create_argv(disk.spec, spec.size))
                messages.append(f"disk: new RBD image {disk.spec} ({human(spec.size)}) on Ceph "
                                f"({backend.reason})")
            else:
                state.vm_dir(name).mkdir(parents=True)
                disk = placeholder
                sf.create(Path(disk.path), spec.size)
                messages.append(f"disk: new qcow2 file {disk.path} ({human(spec.size)}) in the state "
                                f"directory, not on Ceph ({backend.reason})")
    except BaseException:
        # Nothing half-made stays behind: no definition, no empty VM directory.
        if state.vm_dir(name).exists() and not state.definition(name).exists():
            shutil.rmtree(state.vm_dir(name))
        raise
    defn = defn.with_disks([disk])
    state.lock_down()
    definition.save(defn, state.definition(name))
    if iso:
        messages.append(f"ISO: {iso}")
    return [f"created VM {name}: {memory_mb} MiB RAM, {cpus} CPU(s), firmware {defn.firmware}, "
            f"network {defn.network.mode}, shared folder {_shared_text(defn)}"] + messages + \
           [f"definition: {state.definition(name)}", f"start it: boot-vm {name}"]


def _shared_text(defn: VMDefinition) -> str:
    return defn.shared.transport if defn.shared.enabled else "off"


def preflight(state: StateDir, defn: VMDefinition) -> None:
    """Everything a start needs, checked before anything runs."""
    host.check_resources(defn.memory_mb, defn.cpus, host.limits())
    for disk in defn.disks:
        storage.check_exists(disk)
    for what, path in (("ISO image", defn.iso),
                       ("kernel", defn.kernel and defn.kernel.path),
                       ("initrd", defn.kernel and defn.kernel.initrd)):
        if path and not Path(path).is_file():
            raise UserError(f"the {what} {path} of VM {defn.name} does not exist",
                            hint="restore it or recreate the VM")
    _check_network(defn.network)
    owner = vmuser.lookup()
    state.lock_down()
    if defn.shared.virtiofs:
        shared.find_virtiofsd()
        if owner is not None:
            shared.check_userns()
    if defn.shared.enabled:
        shared.ensure(state, owner)
    if defn.firmware == "uefi":
        supervisor.copy_ovmf_vars(state.vm_dir(defn.name) / "OVMF_VARS.fd", OVMF_VARS_TEMPLATE)
    state.runtime(defn.name).check_socket_paths()


BRIDGE_CONF = Path("/etc/qemu/bridge.conf")


def _check_network(net: Network, sys_net: Path = Path("/sys/class/net")) -> None:
    if net.mode == "bridge":
        if not (sys_net / net.bridge / "bridge").is_dir():
            raise UserError(f"host bridge {net.bridge} does not exist",
                            hint=f"create it (ip link add {net.bridge} type bridge) or use network mode user")
        allowed = BRIDGE_CONF.read_text().split() if BRIDGE_CONF.is_file() else []
        if not any(a in (net.bridge, "all") for a in allowed[1::2]):
            raise UserError(f"qemu-bridge-helper may not use bridge {net.bridge}",
                            hint=f"add the line 'allow {net.bridge}' to {BRIDGE_CONF}")
    elif net.mode == "tap" and not (sys_net / net.tap).exists():
        raise UserError(f"tap device {net.tap} does not exist",
                        hint=f"create it: ip tuntap add {net.tap} mode tap")


def start(state: StateDir, name: str) -> list[str]:
    defn = load(state, name)
    if supervisor.is_running(state, name):
        raise UserError(f"VM {name} is already running",
                        hint=f"attach to it: hypercore vm console {name}, or stop it: hypercore vm stop {name}")
    preflight(state, defn)
    rbd = rbd_claims.rbd_disks(defn)
    notes = [note for disk in rbd for note in rbd_claims.before_start(disk, name)]
    rt = state.runtime(name)
    supervisor.stale_cleanup(rt)
    accel = detect(defn.accel)
    rt.dir.mkdir(parents=True, exist_ok=True)
    rt.accel.write_text(f"{accel.name}\n{accel.reason}\n")
    started = supervisor.launch(state, name, accel.name)
    if rbd:
        _claim_and_run(state, name, rbd)
    return notes + [f"started VM {name} as a {started.mode} (QEMU pid {started.pid}, "
                    f"{accel.name.upper()}: {accel.reason})",
                    f"console: hypercore vm console {name}   (log: {rt.console_log})"]


def _claim_and_run(state: StateDir, name: str, disks: list[RbdDisk]) -> None:
    """QEMU has the RBD disks open, paused: claim them all, then let the guest run.
    Another start that won a claim first makes this one quit its QEMU."""
    try:
        for disk in disks:
            rbd_claims.claim(disk, name)
        with QMP.connect(state.runtime(name).qmp, timeout=10) as q:
            q.execute("cont")
    except BaseException:
        supervisor.stop(state, name, force=True)  # releases what this start claimed
        raise


def require_stopped(state: StateDir, name: str, doing: str) -> None:
    if supervisor.is_running(state, name):
        raise UserError(f"VM {name} is running: cannot {doing} while it runs",
                        hint=f"stop it first: hypercore vm stop {name}")


def all_definitions(state: StateDir) -> list[VMDefinition]:
    return [definition.load(state.definition(n)) for n in state.vm_names()]


def chain_members(defns) -> set[str]:
    used: set[str] = set()
    for d in defns:
        for disk in d.disks:
            used.update(storage.backing_files(disk))
    return used


def delete(state: StateDir, name: str) -> list[str]:
    defn = load(state, name)
    require_stopped(state, name, "delete it")
    # Refuse before touching anything if another VM's disk reads from one of ours.
    mine = {d.path for d in defn.disks if isinstance(d, FileDisk) and d.owned}
    others = [d for d in all_definitions(state) if d.name != name]
    users = sorted({o.name for o in others for disk in o.disks if mine & set(storage.backing_files(disk))})
    if users:
        raise UserError(f"VM {name}'s disk is the base of VM(s) {', '.join(users)}",
                        hint="delete those clones first")
    for disk in defn.disks:
        if isinstance(disk, RbdDisk) and disk.owned:
            rbd_claims.require_unused(disk, "delete", name)
            blockers = storage.rbd_clone_blockers(disk)
            if blockers:
                raise UserError(f"RBD image {disk.spec} of VM {name} has linked clones: "
                                f"{', '.join(blockers)}", hint="delete those VMs first (or flatten them)")
    out = []
    for disk in defn.disks:
        if disk.owned:
            storage.delete(disk)
            out.append(f"deleted disk {disk.describe()}")
        else:
            out.append(f"kept disk {disk.describe()} (not created by hypercore)")
    shutil.rmtree(state.vm_dir(name))
    for base in storage.gc_bases(state, chain_members(others)):
        out.append(f"deleted clone base {base} (no VM uses it any more)")
    return [f"deleted VM {name}"] + out


def set_shared(state: StateDir, name: str, enabled: bool, transport: str | None) -> str:
    defn = load(state, name)
    new = replace(defn, shared=Shared(enabled=enabled, transport=transport or defn.shared.transport))
    if new.shared.virtiofs:
        shared.find_virtiofsd()
    definition.save(new, state.definition(name))
    note = " (takes effect at the next start)" if supervisor.is_running(state, name) else ""
    return f"VM {name}: shared folder {_shared_text(new)}{note}"
