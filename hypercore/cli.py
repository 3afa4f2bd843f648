"""Command line: `hypercore vm|image|share ...`, and the original `create-vm` / `boot-vm`."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys

from hypercore import clones, images, names, shared, snapshots, state as state_mod, storage
from hypercore import stats as stats_mod
from hypercore import supervisor, vms, vmuser
from hypercore.accel import detect
from hypercore.cluster import cli as cluster_cli
from hypercore.definition import Kernel, Network, Shared
from hypercore.errors import UserError, report
from hypercore.locks import locked
from hypercore.qmp import QMP, QMPError
from hypercore.repo import cli as repo_cli
from hypercore.run import CommandError
from hypercore.sizes import human


def _int(what: str, low: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{what} must be at least {low}, not {value}")
        return value
    return parse


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", help="where VMs live (default $HYPERCORE_STATE_DIR or /var/lib/hypercore)")
    p.add_argument("--storage", choices=("auto", "rbd", "file"),
                   help="where new disks and images go: Ceph RBD when reachable (auto), or files")
    p.add_argument("--debug", action="store_true", help="log every command hypercore runs")


def _create_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="VM name: a-z, 0-9 and '-'")
    p.add_argument("ram_mb", type=_int("RAM_MB", 16), metavar="RAM_MB")
    p.add_argument("cpus", type=_int("CPUS"), metavar="CPUS")
    p.add_argument("disk", metavar="DISK",
                   help="rbd:POOL/IMAGE[:conf=PATH], a qcow2/raw file, new:SIZE or image:NAME")
    p.add_argument("iso", nargs="?", metavar="ISO", help="installer ISO attached as a CD-ROM")
    p.add_argument("--firmware", choices=("bios", "uefi"), default="bios")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    p.add_argument("--network", choices=("user", "none", "bridge", "tap"), default="user")
    p.add_argument("--bridge", help="host bridge for --network bridge")
    p.add_argument("--tap", help="tap device for --network tap")
    p.add_argument("--shared", nargs="?", const="both", choices=("both", "virtiofs", "9p"),
                   help="export the common storage space (default both virtiofs and 9p)")
    p.add_argument("--kernel", help="direct kernel boot: kernel image")
    p.add_argument("--initrd", help="direct kernel boot: initramfs")
    p.add_argument("--append", default="", help="direct kernel boot: kernel command line")


def _do_create(st, a) -> list[str]:
    if a.network == "bridge" and not a.bridge:
        raise UserError("--network bridge needs --bridge BRIDGE", hint="e.g. --bridge br0")
    if a.network == "tap" and not a.tap:
        raise UserError("--network tap needs --tap TAP", hint="e.g. --tap tap0")
    if (a.initrd or a.append) and not a.kernel:
        raise UserError("--initrd and --append need --kernel")
    opts = vms.CreateOptions(
        iso=a.iso, firmware=a.firmware, accel=a.accel,
        network=Network(mode=a.network, bridge=a.bridge, tap=a.tap),
        shared=Shared(enabled=a.shared is not None, transport=a.shared or "both"),
        kernel=Kernel(path=a.kernel, initrd=a.initrd, cmdline=a.append) if a.kernel else None,
        storage=a.storage)
    return vms.create(st, a.name, a.ram_mb, a.cpus, a.disk, opts)


def _show(st, name: str, as_json: bool) -> str:
    defn = vms.load(st, name)
    rt = st.runtime(name)
    pid = supervisor.qemu_pid(rt)
    info = {"name": name, "state": "running" if pid else "stopped", "pid": pid,
            "memory_mb": defn.memory_mb, "cpus": defn.cpus, "firmware": defn.firmware,
            "disks": [d.describe() for d in defn.disks], "iso": defn.iso,
            "network": defn.network.mode, "mac": defn.mac,
            "shared": defn.shared.transport if defn.shared.enabled else "off",
            "definition": str(st.definition(name))}
    if pid:
        with QMP.connect(rt.qmp) as q:
            kvm = q.execute("query-kvm")
            info["status"] = q.execute("query-status")["status"]
        info["accel"] = "KVM" if kvm.get("enabled") else "TCG"
        try:
            info["accel_reason"] = rt.accel.read_text().splitlines()[1]
        except (OSError, IndexError):
            pass
        info["console"] = str(rt.console)
        info["vnc"] = str(rt.dir / "vnc.sock")
    else:
        accel = detect(defn.accel)
        info["accel"] = f"{accel.name.upper()} (when started)"
        info["accel_reason"] = accel.reason
    if as_json:
        return json.dumps(info, indent=2)
    width = max(map(len, info))
    return "\n".join(f"{k.replace('_', ' '):<{width}}  {', '.join(v) if isinstance(v, list) else v}"
                     for k, v in info.items() if v not in (None, []))


def _list(st) -> str:
    rows = [("NAME", "STATE", "RAM", "CPUS", "SHARED", "DISKS")]
    for defn in vms.all_definitions(st):
        running = supervisor.is_running(st, defn.name)
        rows.append((defn.name, "running" if running else "stopped", f"{defn.memory_mb}M",
                     str(defn.cpus), defn.shared.transport if defn.shared.enabled else "off",
                     " ".join(d.describe() for d in defn.disks)))
    if len(rows) == 1:
        return "no VMs (create one: create-vm NAME RAM_MB CPUS DISK [ISO])"
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5] for r in rows)


def _lock_names(a) -> list[str]:
    """The VMs a verb changes, checked before their names become lock-file names."""
    if a.verb in ("create", "stop", "delete", "snapshot", "share"):  # start locks in _start
        return [f"vm-{names.vm_name(a.name)}"]
    if a.verb == "clone":
        source = names.split_at_snapshot(a.source)[0]
        found = [source] if names.VM_NAME.fullmatch(source) else []
        return [f"vm-{n}" for n in sorted({*found, names.vm_name(a.new)})]
    return []


def _vm(st, a) -> int:
    with contextlib.ExitStack() as stack:
        for lock in _lock_names(a):
            stack.enter_context(locked(st, lock))
        return _vm_verb(st, a)


def _vm_verb(st, a) -> int:
    v = a.verb
    if v == "list":
        print(_list(st))
    elif v == "show":
        print(_show(st, a.name, a.json))
    elif v == "create":
        print("\n".join(_do_create(st, a)))
    elif v == "start":
        _start(st, a.name, a.console)
    elif v == "stop":
        vms.load(st, a.name)
        print(f"VM {a.name}: " + supervisor.stop(st, a.name, force=a.force, timeout=a.timeout))
    elif v == "delete":
        print("\n".join(vms.delete(st, a.name)))
    elif v == "console":
        vms.load(st, a.name)
        from hypercore.console import attach
        attach(st.runtime(a.name).console, a.name)
    elif v == "stats":
        vms.load(st, a.name)
        pid = supervisor.qemu_pid(st.runtime(a.name))
        if pid is None:
            raise UserError(f"VM {a.name} is not running", hint=f"start it: boot-vm {a.name}")
        with QMP.connect(st.runtime(a.name).qmp) as q:
            s = stats_mod.collect(q, pid, a.interval)
        print(json.dumps(s, indent=2) if a.json else stats_mod.render(a.name, s))
    elif v == "snapshot":
        return _snapshot(st, a)
    elif v == "clone":
        print("\n".join(clones.clone(st, a.source, a.new, a.memory, a.cpus)))
    elif v == "share":
        print(vms.set_shared(st, a.name, a.state == "on", a.transport))
    elif v == "_run":
        from hypercore.runner import run_vm
        return run_vm(st, a.name, a.accel)
    return 0


def _start(st, name: str, console: bool) -> None:
    with locked(st, f"vm-{names.vm_name(name)}"):
        print("\n".join(vms.start(st, name)))
    if console:
        from hypercore.console import attach
        attach(st.runtime(name).console, name)


def _snapshot(st, a) -> int:
    if a.action == "list":
        rows = snapshots.listing(st, a.name)
        if not rows:
            print(f"VM {a.name} has no snapshots")
        for r in rows:
            print(f"{r['name']:<24} {r['date']:<20} disks: {r['disks']}"
                  + ("  protected" if r["protected"] else ""))
        return 0
    if not a.snapshot:
        raise UserError(f"snapshot {a.action} needs a snapshot name",
                        hint=f"hypercore vm snapshot {a.action} {a.name} SNAPSHOT")
    fn = {"create": snapshots.create, "rollback": snapshots.rollback, "delete": snapshots.delete}[a.action]
    print(fn(st, a.name, a.snapshot))
    return 0


def _image(st, a) -> int:
    if a.verb == "import":
        from pathlib import Path
        backend = storage.choose(a.storage)
        _, msg = images.import_image(st, Path(a.file), a.name, backend)
        print(msg)
    elif a.verb == "list":
        found = images.all_images(st)
        if not found:
            print("no images (import one: hypercore image import FILE NAME)")
        for img in found:
            print(f"{img.name:<24} {img.backend:<5} {human(img.size):>9}  {img.location}  (from {img.source})")
    elif a.verb == "delete":
        users = [d.name for d in vms.all_definitions(st)
                 if images.get(st, a.name) and images.get(st, a.name).location in vms.chain_members([d])]
        print(images.delete(st, a.name, users))
    return 0


def _share(st, a) -> int:
    if a.verb == "path":
        print(shared.ensure(st, vmuser.lookup()))
    else:
        sys.stdout.write(shared.mount_script())
    return 0


class _Leaves:
    """Subcommands that also accept the global options after the verb."""

    def __init__(self, subparsers, common):
        self.sub, self.common = subparsers, common

    def add_parser(self, name, **kw):
        return self.sub.add_parser(name, parents=[self.common], **kw)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hypercore", description="Hypercore: VMs (QEMU over QMP, Ceph RBD or qcow2 disks), golden images and their repository, the Ceph cluster")
    _common(p)
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    _common(common)
    groups = p.add_subparsers(dest="group", required=True, metavar="{vm,image,share,repo,cluster}")

    vm = _Leaves(groups.add_parser("vm", help="virtual machines").add_subparsers(dest="verb", required=True), common)
    vm.add_parser("list", help="all VMs and whether they run")
    s = vm.add_parser("show", help="a VM's definition, state and accelerator (KVM or TCG)")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    _create_args(vm.add_parser("create", help="the same as create-vm"))
    s = vm.add_parser("start", help="start a VM (the same as boot-vm)")
    s.add_argument("name")
    s.add_argument("--console", action="store_true", help="then attach to its serial console")
    s = vm.add_parser("stop", help="ACPI power button (or guest agent shutdown), killed after --timeout")
    s.add_argument("name")
    s.add_argument("--force", action="store_true", help="quit QEMU at once, no guest shutdown")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the guest (default 60)")
    s = vm.add_parser("delete", help="remove a stopped VM and the disks hypercore created for it")
    s.add_argument("name")
    s = vm.add_parser("console", help="attach to the serial console (Ctrl-] detaches)")
    s.add_argument("name")
    s = vm.add_parser("stats", help="CPU, memory and disk statistics over QMP")
    s.add_argument("name")
    s.add_argument("--interval", type=float, default=1.0, help="CPU sampling interval in seconds")
    s.add_argument("--json", action="store_true")
    s = vm.add_parser("snapshot", help="create, list, rollback or delete snapshots")
    s.add_argument("action", choices=("create", "list", "rollback", "delete"))
    s.add_argument("name")
    s.add_argument("snapshot", nargs="?")
    s = vm.add_parser("clone", help="a linked clone of a VM (SOURCE or SOURCE@SNAPSHOT) or an image")
    s.add_argument("source", metavar="SOURCE[@SNAPSHOT]")
    s.add_argument("new", metavar="NEW")
    s.add_argument("--memory", type=_int("--memory", 16), default=1024, help="MiB, when cloning an image")
    s.add_argument("--cpus", type=_int("--cpus"), default=1, help="when cloning an image")
    s = vm.add_parser("share", help="export the common storage space to a VM, or stop exporting it")
    s.add_argument("name")
    s.add_argument("state", choices=("on", "off"))
    s.add_argument("--transport", choices=("both", "virtiofs", "9p"))
    s = vm.add_parser("_run")  # the runner process itself (started by vm start)
    s.add_argument("name")
    s.add_argument("--accel", choices=("kvm", "tcg"))

    img = _Leaves(groups.add_parser("image", help="golden images").add_subparsers(dest="verb", required=True), common)
    s = img.add_parser("import", help="convert a qcow2, raw or vmdk file into a golden image")
    s.add_argument("file")
    s.add_argument("name")
    img.add_parser("list", help="golden images")
    s = img.add_parser("delete", help="remove an image no VM uses")
    s.add_argument("name")

    sh = _Leaves(groups.add_parser("share", help="the common storage space").add_subparsers(dest="verb", required=True), common)
    sh.add_parser("path", help="print the host folder (created when missing)")
    sh.add_parser("mount-script", help="print the guest helper that mounts it (virtiofs, else 9p)")
    repo_cli.register(groups, common)
    cluster_cli.register(groups, common)
    return p


def _setup_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(name)s: %(message)s", stream=sys.stderr)


def _guard(prog: str, fn) -> int:
    try:
        return fn() or 0
    except UserError as e:
        return report(e, prog)
    except CommandError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except QMPError as e:
        print(f"{prog}: QEMU refused {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    _setup_logging(a.debug)

    def go():
        st = state_mod.resolve(a.state_dir)
        if a.group == "vm":
            return _vm(st, a)
        if a.group == "image":
            return _image(st, a)
        if a.group == "repo":
            return repo_cli.dispatch(st, a)
        if a.group == "cluster":
            return cluster_cli.dispatch(st, a)
        return _share(st, a)
    return _guard("hypercore", go)


def create_vm_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="create-vm", description="Create a VM (as the original Hypercore did).")
    _create_args(p)
    _common(p)
    a = p.parse_args(argv)
    _setup_logging(a.debug)
    def go():
        st = state_mod.resolve(a.state_dir)
        with locked(st, f"vm-{names.vm_name(a.name)}"):
            print("\n".join(_do_create(st, a)))
    return _guard("create-vm", go)


def boot_vm_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="boot-vm", description="Start a VM created with create-vm.")
    p.add_argument("name")
    p.add_argument("--console", action="store_true", help="then attach to its serial console")
    _common(p)
    a = p.parse_args(argv)
    _setup_logging(a.debug)
    return _guard("boot-vm", lambda: _start(state_mod.resolve(a.state_dir), a.name, a.console))
