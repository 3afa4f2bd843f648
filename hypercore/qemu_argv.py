"""The QEMU command line of a VM, rendered from its definition (pure: no I/O)."""

from __future__ import annotations

from pathlib import Path

from hypercore.accel import Accel
from hypercore.definition import SHARE_TAG, FileDisk, RbdDisk, VMDefinition
from hypercore.state import Runtime

QEMU = "qemu-system-x86_64"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS_TEMPLATE = "/usr/share/OVMF/OVMF_VARS_4M.fd"
AGENT_PORT = "org.qemu.guest_agent.0"


def esc(value: str | Path) -> str:
    """Quote a value for QEMU's key=value option syntax (a ',' is written ',,')."""
    return str(value).replace(",", ",,")


def disk_blockdev(disk, node: str) -> str:
    if isinstance(disk, FileDisk):
        proto = "host_device" if disk.is_device else "file"  # QEMU's file driver refuses devices
        return (f"driver={disk.format},node-name={node},discard=unmap,"
                f"file.driver={proto},file.filename={esc(disk.path)}")
    if isinstance(disk, RbdDisk):
        conf = f",conf={esc(disk.conf)}" if disk.conf else ""
        ns = f",namespace={esc(disk.namespace)}" if disk.namespace else ""
        return (f"driver=rbd,node-name={node},discard=unmap,pool={esc(disk.pool)}{ns},"
                f"image={esc(disk.image)},user={esc(disk.user)}{conf}")
    raise TypeError(disk)


def _chardev_socket(ident: str, path: Path, **extra) -> list[str]:
    opts = f"socket,id={ident},path={esc(path)},server=on,wait=off"
    for k, v in extra.items():
        opts += f",{k}={esc(v)}"
    return ["-chardev", opts]


def build(defn: VMDefinition, rt: Runtime, accel: Accel, *, shared_dir: Path,
          ovmf_vars: Path | None = None, run_as: str | None = None) -> list[str]:
    """run_as: the user QEMU drops to once it has opened its files (hypercore.vmuser)."""
    a: list[str] = [QEMU, "-name", f"guest={defn.name},debug-threads=on",
                    "-nodefaults", "-no-user-config",
                    "-machine", "q35", "-accel", accel.name, "-cpu", accel.cpu,
                    "-smp", str(defn.cpus), "-m", f"{defn.memory_mb}M",
                    "-pidfile", str(rt.qemu_pid)]
    if any(isinstance(d, RbdDisk) for d in defn.disks):
        # Paused until `vm start` holds the disks' claims (hypercore.rbd_claims), then `cont`.
        a.append("-S")
    if run_as:
        # QEMU 7.2: setgid/initgroups/setuid after every device, disk and socket is open.
        a += ["-runas", run_as]
    # Control: QMP for us, the serial console (logged) for people.
    a += _chardev_socket("qmp0", rt.qmp) + ["-mon", "chardev=qmp0,mode=control"]
    a += _chardev_socket("console0", rt.console, logfile=rt.console_log, logappend="on")
    a += ["-serial", "chardev:console0"]
    a += ["-display", "none", "-device", "VGA,id=video0", "-vnc", f"unix:{rt.dir / 'vnc.sock'}"]
    # The guest agent channel, the balloon (memory stats) and an entropy source.
    a += ["-device", "virtio-serial-pci,id=vser0"]
    a += _chardev_socket("qga0", rt.qga)
    a += ["-device", f"virtserialport,bus=vser0.0,chardev=qga0,name={AGENT_PORT}"]
    a += ["-device", "virtio-balloon-pci,id=balloon0", "-device", "virtio-rng-pci,id=rng0"]

    if defn.firmware == "uefi":
        if ovmf_vars is None:
            raise ValueError("uefi firmware needs the VM's OVMF variables file")
        a += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={esc(OVMF_CODE)}",
              "-drive", f"if=pflash,format=raw,unit=1,file={esc(ovmf_vars)}"]

    boot_from_disk = defn.kernel is None
    for i, disk in enumerate(defn.disks):
        node = f"disk{i}"
        a += ["-blockdev", disk_blockdev(disk, node)]
        dev = f"virtio-blk-pci,drive={node},id={node}-dev"
        if boot_from_disk:
            dev += f",bootindex={i + 1}"
        a += ["-device", dev]
    if defn.iso:
        a += ["-blockdev", f"driver=raw,node-name=cd0,read-only=on,"
                           f"file.driver=file,file.filename={esc(defn.iso)},file.read-only=on"]
        a += ["-device", f"ide-cd,drive=cd0,id=cd0-dev,bus=ide.0,bootindex={len(defn.disks) + 1}"]

    if defn.kernel:
        a += ["-kernel", defn.kernel.path]
        if defn.kernel.initrd:
            a += ["-initrd", defn.kernel.initrd]
        if defn.kernel.cmdline:
            a += ["-append", defn.kernel.cmdline]

    net = defn.network
    if net.mode != "none":
        if net.mode == "user":
            a += ["-netdev", "user,id=net0"]
        elif net.mode == "bridge":
            a += ["-netdev", f"bridge,id=net0,br={esc(net.bridge)}"]
        elif net.mode == "tap":
            a += ["-netdev", f"tap,id=net0,ifname={esc(net.tap)},script=no,downscript=no"]
        a += ["-device", f"virtio-net-pci,netdev=net0,id=net0-dev,mac={defn.mac}"]

    if defn.shared.virtiofs:
        # vhost-user needs guest RAM that virtiofsd can map: a shared memfd as the only NUMA node.
        a += ["-object", f"memory-backend-memfd,id=mem,size={defn.memory_mb}M,share=on",
              "-numa", "node,memdev=mem"]
        a += ["-chardev", f"socket,id=vfs0,path={esc(rt.virtiofsd)}"]
        a += ["-device", f"vhost-user-fs-pci,chardev=vfs0,id=vfs0-dev,tag={SHARE_TAG}"]
    if defn.shared.ninep:
        # mapped-xattr: the guest's owners, modes and device nodes are xattrs (user.virtfs.*)
        # of plain files owned by QEMU's user; nothing the guest does makes a host device
        # node or a setuid-root file.
        a += ["-fsdev", f"local,id=fs9p,path={esc(shared_dir)},security_model=mapped-xattr"]
        a += ["-device", f"virtio-9p-pci,fsdev=fs9p,id=fs9p-dev,mount_tag={SHARE_TAG}"]
    return a
