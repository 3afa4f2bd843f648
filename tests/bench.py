"""Image benchmark: build times, sizes, boot time. Prints a Markdown table.

    python3 -m tests.bench             # warm build, sizes, UEFI + BIOS boot
    python3 -m tests.bench --cold      # also a cold build from an empty cache
    python3 -m tests.bench --install   # also the appliance end to end (tests/appliance): USB power-on to HEALTH_OK by phase, netboot clients

Numbers, not assertions: the targets (warm rebuild < 2 min, used size < 2 GB,
boot to multi-user < 90 s under TCG) are compared in the table's last column.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.machine import Machine

TOP = Path(__file__).resolve().parent.parent
BUILD = TOP / "build"
RAW = BUILD / "hypercore.raw"


def timed_build(cache_dir: Path | None) -> float:
    argv = [str(TOP / "tools" / "build-image")]
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    t = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def root_fs_used(raw: Path) -> int:
    """Bytes used in the image's ext4 root filesystem (read without mounting)."""
    table = json.loads(subprocess.run(["sfdisk", "-J", str(raw)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    root = next(p for p in table["partitions"] if p.get("name") == "hypercore-root")
    offset = root["start"] * table.get("sectorsize", 512)
    with tempfile.NamedTemporaryFile() as part:
        subprocess.run(["dd", f"if={raw}", f"of={part.name}", "bs=1M", "iflag=skip_bytes,count_bytes",
                        f"skip={offset}", f"count={root['size'] * 512}", "status=none"], check=True)
        info = subprocess.run(["dumpe2fs", "-h", part.name], capture_output=True, text=True,
                              check=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    blocks, free, bsize = (int(fields[k].strip()) for k in
                           ("Block count", "Free blocks", "Block size"))
    return (blocks - free) * bsize


def zstd_size(raw: Path) -> int:
    zst = subprocess.Popen(["zstd", "-T0", "-3", "-c", str(raw)], stdout=subprocess.PIPE)
    total = 0
    assert zst.stdout is not None
    while chunk := zst.stdout.read(1 << 20):
        total += len(chunk)
    zst.wait()
    return total


def boot_time(firmware: str) -> tuple[float, str, str]:
    with tempfile.TemporaryDirectory() as work:
        m = Machine(RAW, name=f"bench-{firmware}", firmware=firmware, workdir=Path(work))
        with m:
            m.wait_for_unit("multi-user.target", timeout=900)
            seconds = time.monotonic() - m.started_at
            analyze = m.succeed("systemd-analyze time | head -n1").strip()
            return seconds, m.accel, analyze


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", action="store_true", help="also time a build from an empty cache")
    ap.add_argument("--install", action="store_true",
                    help="also run tests/appliance (install, VMs, netboot clients, a second node joining, "
                         "and with --heavy its failure and removal) and show their timings")
    ap.add_argument("--heavy", action="store_true", help="with --install: the heavy multi-node cases too")
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []
    if args.cold:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as cache:
            rows.append(("cold build (empty cache)", f"{timed_build(Path(cache)):.0f} s", ""))
    rows.append(("warm build (cached packages)", f"{timed_build(None):.0f} s", "< 120 s"))
    gib = 2**30
    st = RAW.stat()
    rows.append(("raw image size", f"{st.st_size / gib:.2f} GiB", ""))
    rows.append(("allocated (sparse) size", f"{st.st_blocks * 512 / gib:.2f} GiB", "< 2 GB"))
    rows.append(("root filesystem used", f"{root_fs_used(RAW) / gib:.2f} GiB", ""))
    rows.append(("zstd -3 compressed", f"{zstd_size(RAW) / gib:.2f} GiB", ""))
    initrd = BUILD / "netboot" / "initrd"
    rows.append(("netboot initrd", f"{initrd.stat().st_size / 2**20:.0f} MiB", ""))
    for name in ("root.squashfs", "netroot-initrd.img"):
        rows.append((f"netboot client {name}", f"{(BUILD / 'netboot' / name).stat().st_size / 2**20:.0f} MiB", ""))
    for firmware in ("uefi", "bios"):
        seconds, accel, analyze = boot_time(firmware)
        rows.append((f"boot to multi-user, {firmware.upper()} ({accel.upper()})",
                     f"{seconds:.0f} s", "< 90 s (TCG)"))
        print(f"# {firmware}: {analyze}", file=sys.stderr)
    if args.install:
        # The installed appliance and what runs against it: install, VMs, netboot clients.
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", str(TOP / "tests" / "appliance")]
                       + (["--heavy"] if args.heavy else []), check=True, cwd=TOP)
        phases = json.loads((BUILD / "bench-install.json").read_text())
        for phase, seconds in phases.items():
            rows.append((f"USB install: {phase}", f"{seconds:.0f} s", ""))
        total = phases["live boot"] + phases["install"] + phases["installed boot + first boot"]
        rows.append(("USB power-on to HEALTH_OK", f"{total:.0f} s", ""))
        for what, seconds in json.loads((BUILD / "bench-netboot.json").read_text()).items():
            rows.append((f"netboot client, {what}", f"{seconds:.1f} s", ""))
        for what, seconds in json.loads((BUILD / "bench-scaleout.json").read_text()).items():
            rows.append((f"scale out, {what}", f"{seconds:.0f} s", ""))
    print("| measure | value | target |\n|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
