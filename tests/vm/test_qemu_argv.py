"""QEMU command lines rendered from VM definitions (no QEMU runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypercore import qemu_argv
from hypercore.accel import Accel
from hypercore.definition import FileDisk, Kernel, Network, RbdDisk, Shared, VMDefinition
from hypercore.state import Runtime

RT = Runtime(Path("/var/lib/hypercore/vms/web/run"))
SHARED = Path("/var/lib/hypercore/shared")
TCG = Accel("tcg", "test")
KVM = Accel("kvm", "test")


def _defn(**kw) -> VMDefinition:
    base = dict(name="web", memory_mb=2048, cpus=2,
                disks=(FileDisk(path="/var/lib/hypercore/vms/web/disk0.qcow2", format="qcow2"),))
    base.update(kw)
    return VMDefinition(**base)


def _opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def build(defn, accel=TCG, **kw):
    return qemu_argv.build(defn, RT, accel, shared_dir=SHARED, **kw)


def test_basics_tcg():
    a = build(_defn())
    assert a[0] == "qemu-system-x86_64"
    assert _opt(a, "-accel") == ["tcg"] and _opt(a, "-cpu") == ["max"]
    assert _opt(a, "-smp") == ["2"] and _opt(a, "-m") == ["2048M"]
    assert _opt(a, "-machine") == ["q35"]
    assert "-nodefaults" in a
    assert _opt(a, "-pidfile") == [str(RT.qemu_pid)]
    assert "-daemonize" not in a  # the runner supervises QEMU itself


def test_kvm_uses_host_cpu():
    a = build(_defn(), KVM)
    assert _opt(a, "-accel") == ["kvm"] and _opt(a, "-cpu") == ["host"]


def test_control_sockets():
    a = build(_defn())
    chardevs = _opt(a, "-chardev")
    assert f"socket,id=qmp0,path={RT.qmp},server=on,wait=off" in chardevs
    assert _opt(a, "-mon") == ["chardev=qmp0,mode=control"]
    console = [c for c in chardevs if c.startswith("socket,id=console0")][0]
    assert f"logfile={RT.console_log}" in console
    assert _opt(a, "-serial") == ["chardev:console0"]


def test_guest_agent_channel():
    a = build(_defn())
    devices = _opt(a, "-device")
    assert "virtio-serial-pci,id=vser0" in devices
    assert "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0" in devices
    assert f"socket,id=qga0,path={RT.qga},server=on,wait=off" in _opt(a, "-chardev")
    assert "virtio-balloon-pci,id=balloon0" in devices


def test_qcow2_disk_boots_first_then_iso():
    a = build(_defn(iso="/srv/iso/ubuntu.iso"))
    assert _opt(a, "-blockdev")[0] == ("driver=qcow2,node-name=disk0,discard=unmap,file.driver=file,"
                                       "file.filename=/var/lib/hypercore/vms/web/disk0.qcow2")
    devices = _opt(a, "-device")
    assert "virtio-blk-pci,drive=disk0,id=disk0-dev,bootindex=1" in devices
    assert any(d.startswith("ide-cd,drive=cd0") and d.endswith("bootindex=2") for d in devices)
    assert any("file.filename=/srv/iso/ubuntu.iso" in b and "read-only=on" in b for b in _opt(a, "-blockdev"))


def test_rbd_disk_with_cephx_user_and_conf():
    a = build(_defn(disks=(RbdDisk(pool="vm-pool", image="ubuntu-vm", conf="/etc/ceph/ceph.conf"),
                           FileDisk(path="/data/raw.img", format="raw"))))
    blockdevs = _opt(a, "-blockdev")
    assert blockdevs[0] == ("driver=rbd,node-name=disk0,discard=unmap,pool=vm-pool,image=ubuntu-vm,"
                            "user=admin,conf=/etc/ceph/ceph.conf")
    assert blockdevs[1].startswith("driver=raw,node-name=disk1,")
    assert "virtio-blk-pci,drive=disk1,id=disk1-dev,bootindex=2" in _opt(a, "-device")


def test_commas_in_paths_are_escaped():
    a = build(_defn(disks=(FileDisk(path="/data/a,b.qcow2", format="qcow2"),)))
    assert "file.filename=/data/a,,b.qcow2" in _opt(a, "-blockdev")[0]


def test_uefi_firmware():
    a = build(_defn(firmware="uefi"), ovmf_vars=Path("/var/lib/hypercore/vms/web/OVMF_VARS.fd"))
    drives = _opt(a, "-drive")
    assert drives == ["if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                      "if=pflash,format=raw,unit=1,file=/var/lib/hypercore/vms/web/OVMF_VARS.fd"]
    with pytest.raises(ValueError):
        build(_defn(firmware="uefi"))
    assert _opt(build(_defn()), "-drive") == []  # bios: SeaBIOS, QEMU's default


def test_direct_kernel_boot_has_no_bootindex():
    a = build(_defn(kernel=Kernel(path="/k/vmlinuz", initrd="/k/initrd", cmdline="console=ttyS0 quiet")))
    assert _opt(a, "-kernel") == ["/k/vmlinuz"] and _opt(a, "-initrd") == ["/k/initrd"]
    assert _opt(a, "-append") == ["console=ttyS0 quiet"]
    assert not any("bootindex" in d for d in _opt(a, "-device"))


@pytest.mark.parametrize("net,netdev", [
    (Network(), "user,id=net0"),
    (Network(mode="bridge", bridge="br0"), "bridge,id=net0,br=br0"),
    (Network(mode="tap", tap="tap7"), "tap,id=net0,ifname=tap7,script=no,downscript=no"),
])
def test_networks(net, netdev):
    d = _defn(network=net)
    a = build(d)
    assert _opt(a, "-netdev") == [netdev]
    assert f"virtio-net-pci,netdev=net0,id=net0-dev,mac={d.mac}" in _opt(a, "-device")


def test_no_network():
    a = build(_defn(network=Network(mode="none")))
    assert _opt(a, "-netdev") == [] and not any(d.startswith("virtio-net") for d in _opt(a, "-device"))


def test_shared_off_exports_nothing():
    a = build(_defn())
    assert "-fsdev" not in a and "-numa" not in a
    assert not any("vhost-user-fs" in d for d in _opt(a, "-device"))


def test_shared_virtiofs_needs_shared_memory():
    a = build(_defn(shared=Shared(enabled=True, transport="virtiofs")))
    assert _opt(a, "-object") == ["memory-backend-memfd,id=mem,size=2048M,share=on"]
    assert _opt(a, "-numa") == ["node,memdev=mem"]
    assert f"socket,id=vfs0,path={RT.virtiofsd}" in _opt(a, "-chardev")
    assert "vhost-user-fs-pci,chardev=vfs0,id=vfs0-dev,tag=hypercore_share" in _opt(a, "-device")
    assert "-fsdev" not in a


def test_shared_9p_uses_the_original_mount_tag():
    a = build(_defn(shared=Shared(enabled=True, transport="9p")))
    # mapped-xattr: a guest's device nodes and setuid files are xattrs on the host, not real ones.
    assert _opt(a, "-fsdev") == [f"local,id=fs9p,path={SHARED},security_model=mapped-xattr"]
    assert "virtio-9p-pci,fsdev=fs9p,id=fs9p-dev,mount_tag=hypercore_share" in _opt(a, "-device")
    assert "-numa" not in a


def test_shared_both():
    a = build(_defn(shared=Shared(enabled=True)))
    assert "-fsdev" in a and "-numa" in a


def test_qemu_drops_to_the_vm_user_once_its_files_are_open():
    assert _opt(build(_defn(), run_as="hypercore-vm"), "-runas") == ["hypercore-vm"]
    assert "-runas" not in build(_defn())  # not root: nothing to drop


def test_virtiofsd_runs_in_a_user_namespace_on_the_runners_socket():
    from hypercore.shared import virtiofsd_argv
    assert virtiofsd_argv("/usr/lib/qemu/virtiofsd", 3, SHARED, userns=True) == [
        "unshare", "--user", "--map-root-user", "--", "/usr/lib/qemu/virtiofsd", "--fd=3",
        "-o", f"source={SHARED}", "-o", "cache=auto"]
    assert virtiofsd_argv("/usr/libexec/virtiofsd", 4, SHARED, userns=False) == [
        "/usr/libexec/virtiofsd", "--fd=4", f"--shared-dir={SHARED}", "--cache=auto"]


def test_definition_name_is_the_qemu_name():
    assert _opt(build(_defn()), "-name") == ["guest=web,debug-threads=on"]


def test_no_user_namespaces_is_one_line_with_a_hint(tmp_path, monkeypatch):
    from hypercore import shared
    from hypercore.errors import UserError
    knob = tmp_path / "unprivileged_userns_clone"
    monkeypatch.setattr(shared, "USERNS_SYSCTLS", ((str(knob), "kernel.unprivileged_userns_clone=1"),
                                                  (str(tmp_path / "absent"), "x=1")))
    knob.write_text("1\n")
    shared.check_userns()
    knob.write_text("0\n")
    with pytest.raises(UserError, match="virtiofsd cannot run unprivileged") as e:
        shared.check_userns()
    assert "kernel.unprivileged_userns_clone=1" in e.value.hint
