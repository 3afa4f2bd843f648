"""A tiny test guest: a Debian kernel plus a busybox initramfs built here.

The kernel package is fetched once with `apt-get download` and cached outside
the repository (/var/cache/hypercore/test-guest, or $HYPERCORE_TEST_GUEST_CACHE)
with only the modules the init script loads. The init script:
  - loads virtio, 9p, virtiofs, ACPI button and evdev modules;
  - runs busybox acpid, which powers off on the ACPI power button;
  - mounts the shared space with the shipped hypercore-share-mount helper;
  - prints "hypercore-test-guest: ready" and serves a root shell (no echo) on
    ttyS0, which GuestShell drives through the VM's console socket.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path

from hypercore.run import run
from hypercore_netboot.initrd import cpio_newc

TOP = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("HYPERCORE_TEST_GUEST_CACHE", "/var/cache/hypercore/test-guest"))
BUSYBOX = Path("/bin/busybox")
MODULES = ["virtio_pci", "virtio_blk", "virtio_console", "virtio_balloon",
           "9pnet_virtio", "9p", "virtiofs", "button", "evdev"]
READY = "hypercore-test-guest: ready"
CMDLINE = "console=ttyS0 rdinit=/init"

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /shared /sbin /usr/bin /usr/sbin /var/run /var/log
/bin/busybox --install -s
export PATH=/sbin:/usr/sbin:/bin:/usr/bin:/usr/local/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "hypercore-test-guest: init started"
for m in $(cat /lib/modules/order); do
    insmod /lib/modules/$m.ko || echo "hypercore-test-guest: insmod $m failed"
done
dmesg -n 1
acpid -c /etc/acpi -l /dev/null
hypercore-share-mount /shared
stty -F /dev/ttyS0 -echo
echo "hypercore-test-guest: disk $(head -c 16 /dev/vda 2>/dev/null | tr -d '\000')"
echo "READY_MARKER"
while true; do
    setsid env PS1= PS2= sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'
done
""".replace("READY_MARKER", READY)

POWER_BUTTON = "#!/bin/sh\necho 'hypercore-test-guest: ACPI power button, powering off' >/dev/console\nsync\npoweroff -f\n"


def _kernel_package() -> str:
    """The package linux-image-amd64 points at (e.g. linux-image-6.1.0-56-amd64)."""
    for attempt in (1, 2):
        out = run(["apt-cache", "depends", "--important", "linux-image-amd64"], check=False).stdout
        m = re.search(r"Depends:\s*(linux-image-\S+)", out)
        if m:
            return m.group(1)
        if attempt == 1:  # a fresh machine may have no package lists yet
            run(["apt-get", "update", "-q"], timeout=600)
    raise RuntimeError(f"cannot tell the kernel package from apt-cache: {out!r}")


def _module_closure(moddir: Path, wanted: list[str]) -> list[Path]:
    """Module files for wanted and their dependencies, dependencies first."""
    files = {p.name.split(".ko")[0].replace("-", "_"): p for p in moddir.rglob("*.ko*")}
    order: list[Path] = []

    def visit(name: str) -> None:
        path = files[name.replace("-", "_")]
        if path in order:
            return
        deps = run(["modinfo", "-F", "depends", str(path)]).stdout.strip()
        for dep in filter(None, deps.split(",")):
            visit(dep)
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def kernel() -> Path:
    """A directory with vmlinuz, *.ko and 'order' (the insmod order)."""
    ready = sorted(p for p in CACHE.glob("*/order") if not p.parent.name.endswith(".partial"))
    if ready:
        return ready[-1].parent
    CACHE.mkdir(parents=True, exist_ok=True)
    pkg = _kernel_package()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        run(["apt-get", "download", pkg], cwd=tmp, timeout=600)
        deb = next(Path(tmp).glob("*.deb"))
        tree = Path(tmp) / "x"
        run(["dpkg-deb", "-x", str(deb), str(tree)], timeout=600)
        vmlinuz = next((tree / "boot").glob("vmlinuz-*"))
        kver = vmlinuz.name.removeprefix("vmlinuz-")
        out = CACHE / f"{kver}.partial"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        shutil.copy(vmlinuz, out / "vmlinuz")
        names = []
        for mod in _module_closure(tree / "lib" / "modules" / kver, MODULES):
            if mod.suffix != ".ko":
                raise RuntimeError(f"compressed module {mod.name}: the busybox insmod needs plain .ko")
            shutil.copy(mod, out / mod.name)
            names.append(mod.name.removesuffix(".ko"))
        (out / "order").write_text("\n".join(names) + "\n")
        final = CACHE / kver
        shutil.rmtree(final, ignore_errors=True)
        out.rename(final)
    return final


def initramfs(kdir: Path, out: Path) -> Path:
    if not BUSYBOX.exists():
        raise RuntimeError("busybox-static is not installed: run tools/host-prereqs")
    helper = TOP / "hypercore" / "guest" / "hypercore-share-mount"
    d = stat.S_IFDIR | 0o755
    f = stat.S_IFREG
    entries = [(p, d, b"") for p in ("bin", "lib", "lib/modules", "etc", "etc/acpi", "etc/acpi/PWRF",
                                     "usr", "usr/local", "usr/local/bin")]
    entries += [("bin/busybox", f | 0o755, BUSYBOX.read_bytes()),
                ("init", f | 0o755, INIT.encode()),
                ("etc/acpi/PWRF/00000080", f | 0o755, POWER_BUTTON.encode()),
                ("usr/local/bin/hypercore-share-mount", f | 0o755, helper.read_bytes()),
                ("lib/modules/order", f | 0o644, (kdir / "order").read_bytes())]
    for line in (kdir / "order").read_text().split():
        entries.append((f"lib/modules/{line}.ko", f | 0o644, (kdir / f"{line}.ko").read_bytes()))
    out.write_bytes(cpio_newc(entries))
    return out


class GuestShell:
    """Run commands in the test guest over its serial console socket, output framed."""

    def __init__(self, console_sock: Path, timeout: float = 30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(console_sock))
        self.timeout = timeout
        self.buf = ""
        self.n = 0

    def run(self, command: str, timeout: float | None = None) -> tuple[int, str]:
        self.n += 1
        begin, end = f"__HC_BEGIN_{self.n}__", f"__HC_END_{self.n}__"
        # The markers are assembled by printf, so the command text never matches them.
        line = (f"printf '__HC_BEGIN_%s__\\n' {self.n}; {{ {command}\n}} 2>&1; "
                f"printf '__HC_END_%s__%s\\n' {self.n} \"$?\"\n")
        self.sock.sendall(line.encode())
        pattern = re.compile(re.escape(begin) + r"\r?\n(.*?)" + re.escape(end) + r"(\d+)", re.S)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            m = pattern.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return int(m.group(2)), m.group(1).replace("\r", "")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {command!r}; got: {self.buf[-500:]!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError(f"console closed while running {command!r}: {self.buf[-500:]!r}")
            self.buf += chunk.decode(errors="replace")

    def succeed(self, command: str, timeout: float | None = None) -> str:
        rc, out = self.run(command, timeout)
        if rc != 0:
            raise AssertionError(f"{command!r} exited {rc}: {out}")
        return out

    def close(self) -> None:
        self.sock.close()


def wait_for_console(log: Path, text: str, timeout: float = 120.0, start: int = 0) -> float:
    """Wait until text appears in the console log (after byte offset start); return when."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text.encode() in log.read_bytes()[start:]:
            return time.monotonic()
        time.sleep(0.1)
    tail = log.read_bytes()[start:][-2000:].decode(errors="replace") if log.exists() else "(no console log)"
    raise TimeoutError(f"{text!r} did not appear on the console within {timeout:.0f} s; last output:\n{tail}")
