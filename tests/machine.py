"""A pexpect harness that boots Hypercore images in QEMU and drives them.

    with Machine(image, firmware="uefi", disks=["8G"]) as m:
        m.wait_for_unit("multi-user.target")
        print(m.succeed("ceph --version"))

QEMU runs under pexpect with the serial console on its pty; a reader thread
keeps the console drained into ``console.log`` (so the guest never blocks on a
full pty) and ``wait_for_console_text`` matches against it.

Commands do not go through the login prompt: the image starts a root shell
without prompt or echo on the virtio-serial port ``org.hypercore.test-shell``
(overlays/base/.../hypercore-test-shell.service) when, and only when, the
hypervisor provides that port and the system credential
``hypercore.test-shell`` (an SMBIOS type 11 string; ``test_shell=False``
leaves it out, and the machine then has no such shell). Each command is sent base64-encoded and its
answer comes back framed as ``<marker> <exit code> <base64 output>``, so exit
codes and output are exact.

Every wait has a timeout; when one fails, the error carries the tail of the
console log and ``systemctl --failed``. QEMU never outlives the harness: it
gets PR_SET_PDEATHSIG, and ``kill()`` runs from ``__exit__`` and atexit.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pexpect

import hypercore.accel
from hypercore.qemu_argv import OVMF_CODE, OVMF_VARS_TEMPLATE
SHELL_PORT = "org.hypercore.test-shell"
SHELL_CREDENTIAL = "hypercore.test-shell"
T = TypeVar("T")

_live: set["Machine"] = set()


class MachineError(AssertionError):
    """A command failed or a wait timed out; carries the diagnostics."""


def _set_pdeathsig() -> None:
    # QEMU dies with the test process, even if that is SIGKILLed.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def retry(fn: Callable[[bool], T | None], timeout: float, interval: float = 2.0,
          what: str = "condition") -> T:
    """Call fn(last_try) until it returns something other than None/False.

    fn gets last_try=True on its final call so it can report state there.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = time.monotonic() + interval >= deadline
        result = fn(last)
        if result not in (None, False):
            return result
        if last:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Machine:
    """One QEMU guest booted from a disk image (or a kernel for netboot tests)."""

    def __init__(
        self,
        image: Path | None,
        *,
        name: str = "machine",
        workdir: Path | None = None,
        firmware: str = "uefi",
        memory_mb: int = 2048,
        cpus: int = 2,
        boot_device: str = "virtio",
        disks: Sequence[str | Path] = (),
        nics: Sequence[str] = ("user,restrict=on",),
        accel: str | None = None,
        snapshot: bool = True,
        kernel: Path | None = None,
        initrd: Path | None = None,
        append: str | None = None,
        fw_cfg: dict[str, Path] | None = None,
        netboot: bool = False,
        extra_args: Sequence[str] = (),
        mac_prefix: str = "52:54:00:12:34",
        test_shell: bool = True,
    ):
        if firmware not in ("uefi", "bios"):
            raise ValueError(f"firmware must be uefi or bios, not {firmware!r}")
        if boot_device not in ("virtio", "usb"):
            raise ValueError(f"boot_device must be virtio or usb, not {boot_device!r}")
        self.image = Path(image) if image else None
        self.name = name
        self.workdir = Path(workdir or f"/tmp/hypercore-test/{name}-{uuid.uuid4().hex[:8]}")
        self.firmware = firmware
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.boot_device = boot_device
        self.disks = list(disks)
        self.nics = list(nics)
        # KVM where it really works, else TCG (HYPERCORE_ACCEL=kvm|tcg overrides).
        self.accel = accel or hypercore.accel.detect().name
        self.snapshot = snapshot
        self.kernel, self.initrd, self.append = kernel, initrd, append
        self.fw_cfg = dict(fw_cfg or {})
        # Boot from the first NIC (PXE: iPXE under SeaBIOS, the EDK2 PXE client under OVMF).
        self.netboot = netboot
        self.extra_args = list(extra_args)
        # Machines on one network segment need prefixes of their own.
        self.mac_prefix = mac_prefix
        # The image starts its harness shell only when asked for it (SMBIOS credential).
        self.test_shell = test_shell
        self.console_log = self.workdir / "console.log"
        self.shell_socket = self.workdir / "shell.sock"
        self.qmp_socket = self.workdir / "qmp.sock"
        self.process: pexpect.spawn | None = None
        self.started_at: float | None = None
        self._console = ""
        self._console_lock = threading.Condition()
        self._reader: threading.Thread | None = None
        self._shell: socket.socket | None = None
        self._shell_buf = b""
        self._shell_ready = False

    # ---- lifecycle -------------------------------------------------------

    def qemu_argv(self) -> list[str]:
        """The QEMU command line for this machine (no shell involved)."""
        w = self.workdir
        argv = ["qemu-system-x86_64", "-name", self.name, "-machine", "q35",
                "-m", str(self.memory_mb), "-smp", str(self.cpus)]
        if self.accel == "kvm":
            argv += ["-accel", "kvm", "-cpu", "host"]
        else:
            # -cpu max: ceph-mon dies with SIGILL on QEMU's default CPU model.
            argv += ["-accel", "tcg", "-cpu", "max"]
        argv += ["-display", "none", "-vga", "std", "-monitor", "none",
                 "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
                 "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
                 "-chardev", f"socket,id=shell,path={self.shell_socket},server=on,wait=off",
                 "-device", "virtio-serial-pci,id=vser",
                 "-device", f"virtserialport,bus=vser.0,chardev=shell,name={SHELL_PORT}"]
        if self.test_shell:
            argv += ["-smbios", f"type=11,value=io.systemd.credential:{SHELL_CREDENTIAL}=1"]
        if self.firmware == "uefi":
            argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                     "-drive", f"if=pflash,format=raw,unit=1,file={w / 'OVMF_VARS.fd'}"]
        if self.image is not None:
            # With a kernel given, QEMU boots that kernel (it owns boot index 0).
            bootindex = "" if self.kernel is not None else ",bootindex=0"
            argv += ["-drive", f"if=none,id=boot,format=qcow2,file={w / 'boot.qcow2'}"]
            if self.boot_device == "usb":
                argv += ["-device", "qemu-xhci,id=xhci",
                         "-device", f"usb-storage,bus=xhci.0,drive=boot,removable=on{bootindex}"]
            else:
                argv += ["-device", f"virtio-blk-pci,drive=boot{bootindex}"]
        if self.kernel is not None:
            # Direct kernel boot, e.g. to pass hypercore.answers=URL on the command line.
            argv += ["-kernel", str(self.kernel)]
            if self.initrd is not None:
                argv += ["-initrd", str(self.initrd)]
            if self.append:
                argv += ["-append", self.append]
        for name, path in self.fw_cfg.items():
            # e.g. {"opt/io.systemd.credentials/hypercore.answers": Path(...)}: a systemd credential.
            argv += ["-fw_cfg", f"name={name},file={path}"]
        for i, _ in enumerate(self.disks):
            argv += ["-drive", f"if=none,id=disk{i},format=qcow2,file={w / f'disk{i}.qcow2'}",
                     "-device", f"virtio-blk-pci,drive=disk{i},serial=HCDISK{i}"]
        for i, nic in enumerate(self.nics):
            kind, _, opts = nic.partition(",")
            boot = ",bootindex=0" if self.netboot and i == 0 else ""
            argv += ["-netdev", f"{kind},id=net{i}" + (f",{opts}" if opts else ""),
                     "-device", f"virtio-net-pci,netdev=net{i},mac={self.mac(i)}{boot}"]
        return argv + self.extra_args

    def mac(self, index: int) -> str:
        """The MAC address of NIC number index (the same on every run)."""
        return f"{self.mac_prefix}:{0x56 + index:02x}"

    def _prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.firmware == "uefi":
            shutil.copyfile(OVMF_VARS_TEMPLATE, self.workdir / "OVMF_VARS.fd")
        if self.image is not None:
            boot = self.workdir / "boot.qcow2"
            if self.snapshot:
                # The built image stays untouched: the guest writes to an overlay.
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                                "-b", str(self.image.resolve()), str(boot)], check=True)
            elif not boot.exists():
                subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(self.image), str(boot)],
                               check=True)
        for i, disk in enumerate(self.disks):
            path = self.workdir / f"disk{i}.qcow2"
            if isinstance(disk, Path):
                # An existing disk (e.g. the one an install wrote), used in place.
                if not path.exists():
                    path.symlink_to(disk.resolve())
            elif not path.exists():
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(disk)],
                               check=True)

    def start(self) -> "Machine":
        """Start QEMU (no wait for the guest)."""
        if self.process is not None and self.process.isalive():
            return self
        self._prepare()
        # A restart (after kill()): the old QEMU's sockets must not be mistaken for the new one's.
        for sock in (self.shell_socket, self.qmp_socket):
            sock.unlink(missing_ok=True)
        self.console_log.write_text("")
        argv = self.qemu_argv()
        (self.workdir / "qemu-argv.txt").write_text("\n".join(argv) + "\n")
        self.process = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", codec_errors="replace",
                                     timeout=None, echo=False, preexec_fn=_set_pdeathsig,
                                     dimensions=(50, 200))
        self.started_at = time.monotonic()
        _live.add(self)
        self._reader = threading.Thread(target=self._drain_console, daemon=True)
        self._reader.start()
        # Connect to the test shell's port at once: while the host side is not
        # connected, the guest's shell reads end-of-file.
        self._connect_shell()
        return self

    def _drain_console(self) -> None:
        proc = self.process
        with self.console_log.open("a", encoding="utf-8") as log:
            while True:
                try:
                    data = proc.read_nonblocking(4096, timeout=1)
                except pexpect.TIMEOUT:
                    continue
                except (pexpect.EOF, OSError, ValueError):
                    break
                log.write(data)
                log.flush()
                with self._console_lock:
                    self._console += data
                    self._console_lock.notify_all()
        with self._console_lock:
            self._console_lock.notify_all()

    def is_running(self) -> bool:
        return self.process is not None and self.process.isalive()

    def kill(self) -> None:
        """Stop QEMU at once (idempotent)."""
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        self._shell_ready = False
        if self.process is not None:
            if self.process.isalive():
                self.process.kill(signal.SIGKILL)
            # A big guest takes a moment to die (the kernel frees its memory);
            # pexpect's close() gives up too early, so wait (and reap) first.
            deadline = time.monotonic() + 60
            while self.process.isalive() and time.monotonic() < deadline:
                time.sleep(0.2)
            try:
                self.process.close(force=True)
            except pexpect.ExceptionPexpect:
                pass
        if self._reader is not None:
            self._reader.join(timeout=5)
        _live.discard(self)

    def shutdown(self, timeout: float = 180) -> None:
        """Power the guest off cleanly; kill QEMU if it does not stop in time."""
        if not self.is_running():
            return
        try:
            self._send_shell("systemctl poweroff --no-block")
            retry(lambda _: not self.is_running(), timeout, 1, "the guest to power off")
        except (TimeoutError, OSError) as e:
            tail = self.console_tail()
            self.kill()
            raise MachineError(f"{self.name}: {e}\n--- console tail ---\n{tail}") from None
        finally:
            self.kill()

    def wait_for_shutdown(self, timeout: float = 300) -> None:
        """Wait for QEMU to exit by itself (e.g. after the guest powers off)."""
        self._wait(lambda _: not self.is_running(), timeout, "QEMU to exit")
        self.kill()

    def __enter__(self) -> "Machine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()

    # ---- console ---------------------------------------------------------

    def console_text(self) -> str:
        with self._console_lock:
            return self._console

    def console_tail(self, lines: int = 60) -> str:
        return "\n".join(self.console_text().splitlines()[-lines:])

    def wait_for_console_text(self, regex: str, timeout: float = 300,
                              since: int = 0) -> re.Match:
        """Wait until the console output (from offset ``since``) matches regex."""
        pattern = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        with self._console_lock:
            while True:
                m = pattern.search(self._console, since)
                if m:
                    return m
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.is_running():
                    break
                self._console_lock.wait(min(remaining, 1))
        reason = "QEMU exited" if not self.is_running() else f"timed out after {timeout:.0f} s"
        raise MachineError(self._diagnose(f"console text /{regex}/ not seen: {reason}"))

    def reboot(self, timeout: float = 900) -> None:
        """Reboot the guest (same QEMU process) and wait until its shell answers again."""
        since = len(self.console_text())
        self._send_shell("systemctl reboot")
        self._shell_ready = False
        # The new boot's kernel banner: from here on the shell that answers is the new one.
        self.wait_for_console_text(r"Linux version \d", timeout=timeout, since=since)
        self.wait_for_shell(timeout=timeout)

    def send_console(self, text: str) -> None:
        """Type text on the serial console."""
        assert self.process is not None
        self.process.send(text)

    # ---- the command channel --------------------------------------------

    def _connect_shell(self) -> socket.socket:
        if self._shell is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                retry(lambda _: self.shell_socket.exists() or None, 30, 0.2, "QEMU's shell socket")
                s.connect(str(self.shell_socket))
            except (OSError, TimeoutError) as e:
                s.close()
                time.sleep(0.5)  # let the console reader collect QEMU's last words
                raise MachineError(self._diagnose(f"cannot reach the test shell ({e}); "
                                                  f"QEMU running: {self.is_running()}",
                                                  shell=False)) from None
            self._shell = s
            self._shell_buf = b""
        return self._shell

    def _send_shell(self, line: str) -> None:
        self._connect_shell().sendall(line.encode() + b"\n")

    def _read_frame(self, marker: str, timeout: float) -> tuple[int, str] | None:
        pattern = re.compile(rb"\n" + marker.encode() + rb" (\d+) ([A-Za-z0-9+/=]*)\n")
        sock = self._connect_shell()
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self._shell_buf)
            if m:
                self._shell_buf = self._shell_buf[m.end():]
                return int(m.group(1)), base64.b64decode(m.group(2)).decode("utf-8", "replace")
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.is_running():
                return None
            ready, _, _ = select.select([sock], [], [], min(remaining, 1))
            if ready:
                chunk = sock.recv(65536)
                if not chunk:
                    raise MachineError(self._diagnose("the test shell's socket closed"))
                self._shell_buf += chunk

    def execute(self, command: str, timeout: float = 300) -> tuple[int, str]:
        """Run a shell command in the guest as root; return (exit code, stdout+stderr).

        The command is killed in the guest after ``timeout`` seconds (exit 124).
        """
        marker = "__HC_" + uuid.uuid4().hex
        b64 = base64.b64encode(command.encode()).decode()
        self._send_shell(
            f"__hc=$(printf %s {b64} | base64 -d); "
            f"timeout -k 5 {int(timeout)} bash -c \"$__hc\" </dev/null >/run/hc-out 2>&1; "
            f"printf '\\n%s %d %s\\n' {marker} $? \"$(base64 -w0 </run/hc-out)\"")
        frame = self._read_frame(marker, timeout + 30)
        if frame is None:
            raise MachineError(self._diagnose(f"no answer to {command!r} within {timeout:.0f} s",
                                              shell=False))
        return frame

    def wait_for_shell(self, timeout: float = 600) -> None:
        """Wait until the guest's test shell answers (the guest is up enough)."""
        if self._shell_ready:
            return
        deadline = time.monotonic() + timeout
        marker = "__HC_READY_" + uuid.uuid4().hex
        while time.monotonic() < deadline:
            if not self.is_running():
                break
            self._send_shell(f"printf '\\n%s 0 \\n' {marker}")
            if self._read_frame(marker, min(20, max(1, deadline - time.monotonic()))) is not None:
                self._shell_ready = True
                return
        raise MachineError(self._diagnose(f"the test shell did not answer within {timeout:.0f} s",
                                          shell=False))

    def succeed(self, command: str, timeout: float = 300) -> str:
        """Run command; return its output; raise MachineError if it exits non-zero."""
        self.wait_for_shell()
        rc, out = self.execute(command, timeout)
        if rc != 0:
            raise MachineError(f"{self.name}: command failed with exit code {rc}: {command}\n"
                               f"--- output ---\n{out}")
        return out

    def fail(self, command: str, timeout: float = 300) -> str:
        """Run command; return its output; raise MachineError if it exits zero."""
        self.wait_for_shell()
        rc, out = self.execute(command, timeout)
        if rc == 0:
            raise MachineError(f"{self.name}: command unexpectedly succeeded: {command}\n"
                               f"--- output ---\n{out}")
        return out

    def wait_until_succeeds(self, command: str, timeout: float = 300,
                            interval: float = 5) -> str:
        """Retry command until it exits zero; return its output."""
        self.wait_for_shell(timeout)
        last: list[str] = [""]

        def attempt(_last_try: bool) -> str | None:
            rc, out = self.execute(command, timeout=max(10, interval * 4))
            last[0] = f"exit {rc}: {out}"
            return out if rc == 0 else None

        return self._wait(attempt, timeout, f"`{command}` to succeed", detail=last)

    def wait_for_unit(self, unit: str, timeout: float = 600) -> None:
        """Wait until a systemd unit is active; fail early if it failed."""
        self.wait_for_shell(timeout)

        def attempt(_last_try: bool) -> bool | None:
            _, state = self.execute(f"systemctl is-active {unit}", timeout=30)
            state = state.strip()
            if state == "failed":
                _, status = self.execute(f"systemctl status --no-pager -n 30 {unit}", 30)
                raise MachineError(self._diagnose(f"unit {unit} failed:\n{status}"))
            return state == "active" or None

        self._wait(attempt, timeout, f"unit {unit} to be active")

    def _wait(self, fn: Callable[[bool], T | None], timeout: float, what: str,
              detail: list[str] | None = None) -> T:
        try:
            return retry(fn, timeout, what=what)
        except TimeoutError as e:
            extra = f"\nlast result: {detail[0]}" if detail and detail[0] else ""
            raise MachineError(self._diagnose(f"{e}{extra}")) from None

    def _diagnose(self, message: str, shell: bool = True) -> str:
        """message + console tail + `systemctl --failed` (when the shell answers)."""
        parts = [f"{self.name}: {message}", "--- console tail ---", self.console_tail()]
        if shell and self.is_running():
            try:
                rc, failed = self.execute("systemctl --failed --no-pager --no-legend", timeout=20)
                parts += ["--- systemctl --failed ---", failed or "(none)"]
            except (MachineError, OSError):
                parts += ["--- systemctl --failed: the shell did not answer ---"]
        return "\n".join(parts)


def gone(pid: int, timeout: float = 20) -> bool:
    """Has process pid exited (within timeout seconds)?"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie is gone too: it is only waiting for its (dead) parent's reaper.
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split()[2] == "Z":
            return True
        time.sleep(0.5)
    return False


@atexit.register
def _kill_all() -> None:
    for m in list(_live):
        m.kill()
