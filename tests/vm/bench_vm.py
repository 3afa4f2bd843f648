"""Benchmark of the VM services (prints a table; asserts nothing).

    flock /tmp/hypercore-qemu.lock /usr/bin/python3 -m tests.vm.bench_vm [--boots 3] [--mib 128]

1. Linked-clone time from qcow2 golden images of 1, 10 and 100 GiB (sparse):
   it should be flat, as nothing is copied.
2. Time from boot-vm to the guest's first console line (and to its init's
   "ready" line) for the tiny test guest.
3. Sequential write and read throughput of the shared space inside a guest,
   virtiofs vs 9p (the same guest mounts both).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from hypercore.accel import detect
from hypercore.run import run
from tests.vm import guest
from tests.vm.conftest import CLI
from tests.vm.guest import READY, GuestShell, wait_for_console


def bench_clones(state: Path, cli: CLI) -> list[tuple[str, str]]:
    rows = []
    for gib in (1, 10, 100):
        src = state / f"golden-{gib}g.qcow2"
        run(["qemu-img", "create", "-q", "-f", "qcow2", str(src), f"{gib}G"])
        # Some real data at the start, like an installed system's first blocks.
        run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64M", str(src)], timeout=300)
        cli.hc("image", "import", str(src), f"golden-{gib}g")
        times = []
        for i in range(3):
            t = time.monotonic()
            out = cli.hc("vm", "clone", f"golden-{gib}g", f"c{gib}-{i}").stdout
            times.append(time.monotonic() - t)
            inner = float(out.split(" in ")[1].split(" ms ")[0]) / 1000
        rows.append((f"clone of a {gib:>3} GiB qcow2 golden image",
                     f"{statistics.median(times) * 1000:6.0f} ms command, {inner * 1000:5.1f} ms in hypercore"))
    return rows


def _create(cli: CLI, name: str, memory: str, *extra: str) -> None:
    kdir = guest.kernel()
    initrd = cli.state / "initrd.img"
    if not initrd.exists():
        guest.initramfs(kdir, initrd)
    cli("create-vm", name, memory, "1", "new:64M", "--kernel", str(kdir / "vmlinuz"), "--initrd", str(initrd),
        "--append", guest.CMDLINE, "--network", "none", *extra)


def bench_boot(state: Path, cli: CLI, boots: int) -> list[tuple[str, str]]:
    _create(cli, "boot", "256")
    log = state / "vms" / "boot" / "run" / "console.log"
    first, ready = [], []
    for _ in range(boots):
        offset = log.stat().st_size if log.exists() else 0
        t = time.monotonic()
        cli("boot-vm", "boot")
        while not (log.exists() and log.stat().st_size > offset):
            time.sleep(0.01)
        first.append(time.monotonic() - t)
        ready.append(wait_for_console(log, READY, 180, offset) - t)
        cli.hc("vm", "stop", "boot", "--force")
    return [("boot-vm to the guest's first console line", f"{statistics.median(first):6.2f} s (median of {boots})"),
            ("boot-vm to the test guest's init 'ready'", f"{statistics.median(ready):6.2f} s (median of {boots})")]


def _timed(sh: GuestShell, command: str) -> float:
    out = sh.succeed(f"t0=$(cut -d' ' -f1 /proc/uptime); {command}; t1=$(cut -d' ' -f1 /proc/uptime); "
                     "echo \"$t0 $t1\"", timeout=600)
    t0, t1 = map(float, out.split()[-2:])
    return max(t1 - t0, 0.01)


def bench_shared(state: Path, cli: CLI, mib: int) -> list[tuple[str, str]]:
    _create(cli, "share", "512", "--shared", "both")
    cli("boot-vm", "share")
    wait_for_console(state / "vms" / "share" / "run" / "console.log", READY, 180)
    sh = GuestShell(state / "vms" / "share" / "run" / "console.sock")
    rows = []
    try:
        assert " virtiofs " in sh.succeed("grep ' /shared ' /proc/mounts")
        sh.succeed("mkdir -p /mnt9 && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hypercore_share /mnt9")
        for label, mnt in (("virtiofs", "/shared"), ("9p", "/mnt9")):
            f = f"{mnt}/bench-{label}"
            w = _timed(sh, f"dd if=/dev/zero of={f} bs=1M count={mib} conv=fsync 2>/dev/null")
            sh.succeed("sync; echo 3 > /proc/sys/vm/drop_caches")
            r = _timed(sh, f"dd if={f} of=/dev/null bs=1M 2>/dev/null")
            sh.succeed(f"rm -f {f}")
            d = f"{mnt}/small-{label}"
            small = _timed(sh, f"mkdir {d} && for i in $(seq 500); do echo $i > {d}/$i; done && ls -l {d} >/dev/null")
            sh.succeed(f"rm -rf {d}")
            rows.append((f"shared space, {label}", f"write {mib / w:7.1f} MiB/s, read {mib / r:7.1f} MiB/s "
                                                   f"({mib} MiB, 1 MiB blocks); 500 small files {small:5.2f} s"))
    finally:
        sh.close()
        cli.hc("vm", "stop", "share", "--force", ok=None)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boots", type=int, default=3)
    ap.add_argument("--mib", type=int, default=128, help="file size for the shared-space throughput")
    a = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="hc-bench-", dir="/tmp"))
    cli = CLI(state)
    accel = detect("auto")
    rows = [("accelerator", f"{accel.name.upper()} ({accel.reason}); host CPUs {os.cpu_count()}")]
    try:
        rows += bench_clones(state, cli)
        rows += bench_boot(state, cli, a.boots)
        rows += bench_shared(state, cli, a.mib)
    finally:
        for name in ("boot", "share"):
            cli.hc("vm", "stop", name, "--force", ok=None)
        shutil.rmtree(state, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v.strip()} |")


if __name__ == "__main__":
    main()
