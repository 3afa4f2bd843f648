"""End to end: the built image boots under UEFI (OVMF) and legacy BIOS
(SeaBIOS) and has everything the appliance needs."""

from __future__ import annotations

import re
import time

import pytest

from tests.machine import gone
from tests.machine import Machine, MachineError

pytestmark = pytest.mark.boot


@pytest.fixture(scope="module", params=["uefi", "bios"])
def booted(request, image, tmp_path_factory):
    firmware = request.param
    m = Machine(image, name=f"boot-{firmware}", firmware=firmware, memory_mb=2048,
                workdir=tmp_path_factory.mktemp(f"boot-{firmware}"))
    m.start()
    try:
        m.wait_for_unit("multi-user.target", timeout=900)
        m.boot_seconds = time.monotonic() - m.started_at
        yield m
    finally:
        m.kill()


def test_reaches_multi_user_with_no_failed_unit(booted):
    state = booted.execute("systemctl is-system-running --wait", timeout=300)[1].strip()
    failed = booted.succeed("systemctl --failed --no-legend --plain --no-pager")
    assert failed.strip() == "", f"failed units:\n{failed}"
    assert state == "running", f"system state {state!r}"


def test_booted_with_the_requested_firmware(booted):
    has_efi = booted.execute("test -d /sys/firmware/efi")[0] == 0
    assert has_efi == (booted.firmware == "uefi")


def test_consoles_and_hostname(booted):
    cmdline = booted.succeed("cat /proc/cmdline")
    assert "console=tty0" in cmdline and "console=ttyS0,115200" in cmdline
    assert booted.succeed("hostname").strip() == "hypercore"
    assert booted.succeed("hostnamectl hostname").strip() == "hypercore"


def test_live_role_has_root_shell_on_serial_only(booted):
    # The serial console logs root in by itself (live/installer role) ...
    booted.wait_for_console_text(r"root@hypercore:~#", timeout=120)
    # ... but root has no password: no login anywhere else (ssh, VGA console).
    status = booted.succeed("passwd --status root").split()
    assert status[1] == "L", f"root password is not locked: {status}"
    assert booted.execute("test -e /etc/hypercore/live")[0] == 0
    assert "autologin" not in booted.succeed("systemctl cat getty@tty1.service")


def test_ssh_host_keys_are_made_on_the_machine(booted):
    booted.wait_for_unit("ssh.service", timeout=120)
    keys = booted.succeed("ls /etc/ssh/").split()
    assert {"ssh_host_ed25519_key", "ssh_host_ecdsa_key"} <= set(keys), keys
    # No RSA key (its generation took 14 s of the boot), and sshd offers what was made.
    assert "ssh_host_rsa_key" not in keys, keys
    offered = booted.succeed("sshd -T | grep '^hostkey '").split()
    assert offered == ["hostkey", "/etc/ssh/ssh_host_ed25519_key", "hostkey", "/etc/ssh/ssh_host_ecdsa_key"], offered
    booted.succeed("systemctl is-active hypercore-ssh-keygen.service || "
                   "systemctl show -p Result hypercore-ssh-keygen.service | grep -q success")
    # sshd alone holds port 22 (Debian's ssh.socket is off), so a reload keeps it listening.
    booted.fail("systemctl is-active ssh.socket")
    booted.succeed("systemctl reload ssh.service && sleep 2 && systemctl is-active ssh.service")


# Debian's units that the appliance's presets turn off (no use on an appliance).
UNUSED_UNITS = ("nvmefc-boot-connections.service", "nvmf-autoconnect.service", "lvm2-monitor.service",
                "e2scrub_reap.service", "e2scrub_all.timer", "dpkg-db-backup.timer",
                # The boot loader comes with the image, not from a package updated in place (7.7 s of the boot).
                "systemd-boot-update.service")


def test_a_boot_does_no_first_boot_pass_and_starts_nothing_unused(booted):
    # The presets were applied when the image was built; an empty
    # /etc/machine-id (not "uninitialized") keeps systemd from applying them
    # all again at each boot of a fresh copy, and still gives the machine an ID.
    kernel_log = booted.succeed("dmesg")
    assert "Detected first boot" not in kernel_log
    assert "Populated /etc with preset unit settings" not in kernel_log
    assert re.fullmatch(r"[0-9a-f]{32}", booted.succeed("cat /etc/machine-id").strip())
    states = booted.succeed(f"systemctl is-enabled {' '.join(UNUSED_UNITS)} || true").split()
    assert states == ["disabled"] * len(UNUSED_UNITS), dict(zip(UNUSED_UNITS, states))


def test_kvm_modules_are_in_the_kernel(booted):
    for mod in ("kvm", "kvm_intel", "kvm_amd", "vhost_net", "rbd", "btrfs", "virtio_blk"):
        booted.succeed(f"modinfo -n {mod}")


@pytest.mark.parametrize("command,expect", [
    ("qemu-system-x86_64 --version", r"QEMU emulator version 7\."),
    ("qemu-img --version", r"qemu-img version"),
    ("ceph --version", r"ceph version 16\.2"),
    ("ceph-mon --version", r"ceph version 16\.2"),
    ("ceph-mgr --version", r"ceph version 16\.2"),
    ("ceph-osd --version", r"ceph version 16\.2"),
    ("ceph-volume --help", r"ceph-volume"),
    ("rbd --version", r"ceph version 16\.2"),
    ("btrfs --version", r"btrfs-progs"),
    ("lvm version", r"LVM version"),
    ("dnsmasq --version", r"Dnsmasq version"),
    # test -s follows symlinks (Debian's ipxe.efi points into /boot, which this image empties).
    ("for f in undionly.kpxe snponly.efi ipxe.efi; do test -s /usr/lib/ipxe/$f && echo ok $f; done",
     r"ok undionly.kpxe\nok snponly.efi\nok ipxe.efi"),
    ("test -s /usr/lib/hypercore/netboot/vmlinuz && test -s /usr/lib/hypercore/netboot/initrd.img && echo ok",
     r"^ok$"),
    ("lsblk -n -o PARTLABEL,FSTYPE | grep hypercore-netroot", r"hypercore-netroot\s+squashfs"),
    ("ls /usr/lib/PXELINUX/pxelinux.0", r"pxelinux.0"),
    ("ls /usr/lib/qemu/virtiofsd", r"virtiofsd"),
    ("qemu-img create -f qcow2 /tmp/t.qcow2 16M && qemu-img info /tmp/t.qcow2", r"file format: qcow2"),
    ("qemu-img --help | grep 'Supported formats'", r"\brbd\b"),
    ("sshd -V 2>&1 || true", r"OpenSSH"),
])
def test_appliance_tools_run(booted, command, expect):
    out = booted.succeed(command)
    assert re.search(expect, out, re.M), f"{command!r} printed:\n{out}"


@pytest.mark.parametrize("command", ["hypercore", "create-vm", "boot-vm", "hypercore-install", "hypercore-netboot"])
def test_project_commands_run(booted, command):
    out = booted.succeed(f"{command} --help")
    assert f"usage: {command}" in out


def test_project_installed_as_wheel_not_source_tree(booted):
    out = booted.succeed("python3 -c 'import hypercore, hypercore_installer; "
                         "print(hypercore.__file__); print(hypercore_installer.__file__)'")
    assert all(line.startswith("/usr/local/lib/python3") for line in out.split())
    booted.succeed("ls -d /usr/local/lib/python3*/dist-packages/hypercore-*.dist-info")
    booted.fail("ls /work/src /usr/local/lib/python3*/dist-packages/tests")


def test_harness_frames_exit_codes_and_output_exactly(booted):
    rc, out = booted.execute("printf 'a\\n\\nb \\x01'; echo err >&2; exit 7")
    assert rc == 7
    assert out == "a\n\nb \x01err\n"
    with pytest.raises(MachineError, match="exit code 3"):
        booted.succeed("exit 3")
    assert booted.fail("false") == ""
    rc, _ = booted.execute("sleep 30", timeout=2)
    assert rc == 124


def test_harness_wait_reports_console_and_failed_units(booted):
    with pytest.raises(MachineError) as e:
        booted.wait_until_succeeds("test -e /nonexistent", timeout=6)
    text = str(e.value)
    assert "--- console tail ---" in text and "--- systemctl --failed ---" in text
    assert "last result: exit 1" in text


def test_shutdown_powers_off_cleanly(booted):
    """Last in this module (it ends the machine): the harness's shutdown()
    powers the guest off through systemd, and QEMU exits."""
    pid = booted.process.pid
    booted.shutdown(timeout=300)
    assert not booted.is_running()
    assert gone(pid)
    assert "reboot: Power down" in booted.console_log.read_text(errors="replace")


def test_no_harness_shell_unless_the_hypervisor_asks_for_it(image, tmp_path):
    """The virtio port alone opens no root shell: without the SMBIOS credential
    hypercore.test-shell (which every other Machine passes, and whose shell
    every other test uses) the unit is skipped by its condition and the port
    stays silent. Checked on the serial console's own live root shell."""
    m = Machine(image, name="no-test-shell", firmware="bios", memory_mb=2048, workdir=tmp_path,
                test_shell=False)
    with m:
        m.wait_for_console_text(r"root@hypercore:~#", timeout=900)
        unit = "hypercore-test-shell.service"
        m.send_console(f"echo SHELL-$(systemctl show -P ConditionResult {unit})-"
                       f"$(systemctl show -P ConditionTimestampMonotonic {unit} | grep -qvx 0 && echo checked)-"
                       "$(ls /dev/virtio-ports/)-$(ls /run/credentials/@system/ 2>/dev/null | grep -c test-shell)\n")
        m.wait_for_console_text(r"SHELL-no-checked-org\.hypercore\.test-shell-0", timeout=120)
        with pytest.raises(MachineError, match="no answer to 'true'"):
            m.execute("true", timeout=1)
