"""Image benchmark: build times, sizes, boot time. Prints a Markdown table.

    python3 -m tests.bench             # warm build, sizes, UEFI + BIOS boot (and the reference's)
    python3 -m tests.bench --cold      # also a cold build from an empty cache
    python3 -m tests.bench --install   # also the appliance end to end (tests/appliance): USB power-on to HEALTH_OK by phase, netboot clients
    python3 -m tests.bench --results   # with the timings the last run of tests/appliance left in build/ instead

Numbers, not assertions: the goals are in the table's last column. Boot
times come with a reference measured in the same run, so that the noise of a
shared machine cancels out: a minimal image (Debian's kernel and systemd,
nothing else) built by mkosi with the appliance's own boot settings
(mkosi.conf.d/10-boot.conf: boot loaders, kernel command line, initrd
modules) and booted by the same harness under the same QEMU. The ratio
appliance / reference says how far the appliance is from this machine's
floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.machine import Machine
from tools.build_image import DEFAULT_CACHE

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "installer"))      # as pytest's pythonpath: hypercore_installer
BUILD = TOP / "build"
RAW = BUILD / "hypercore.raw"


def timed_build(cache_dir: Path | None) -> float:
    argv = [str(TOP / "tools" / "build-image")]
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    t = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


REFERENCE_PACKAGES = ("systemd", "systemd-sysv", "udev", "linux-image-amd64")


def build_reference(cache: Path) -> Path:
    """build/bench-reference/reference.raw: kernel + systemd, the appliance's boot settings."""
    work = BUILD / "bench-reference"
    shutil.rmtree(work, ignore_errors=True)
    conf = work / "mkosi.conf.d"
    conf.mkdir(parents=True)
    shutil.copy(TOP / "mkosi.conf.d" / "10-boot.conf", conf / "10-boot.conf")
    (conf / "00-base.conf").write_text(
        "[Distribution]\nDistribution=debian\nRelease=bookworm\nArchitecture=x86-64\n"
        f"PackageManagerTrees={TOP / 'overlays' / 'pkgmngr'}\n"
        "[Output]\nFormat=disk\nImageId=reference\nOutput=reference\nCompressOutput=no\n"
        "[Content]\nHostname=reference\nPackages=\n" + "".join(f"        {p}\n" for p in REFERENCE_PACKAGES))
    for sub in ("reference-incremental", "packages"):
        (cache / sub).mkdir(parents=True, exist_ok=True)
    subprocess.run(["mkosi", "--directory", str(work), "--output-dir", str(work / "out"),
                    "--cache-dir", str(cache / "reference-incremental"), "--package-cache-dir", str(cache / "packages"),
                    "--incremental=yes", "--force", "build"], check=True, cwd=work,
                   stdout=(work / "mkosi.log").open("w"), stderr=subprocess.STDOUT)
    return work / "out" / "reference.raw"


def first_prompt(image: Path, firmware: str, prompt: str) -> float:
    """Seconds from QEMU's start (firmware power-on) to prompt on the serial
    console (the reference: it has no harness shell)."""
    with tempfile.TemporaryDirectory() as work:
        with Machine(image, name=f"bench-{image.stem}-{firmware}", firmware=firmware, memory_mb=2048,
                     workdir=Path(work), test_shell=False) as m:
            m.wait_for_console_text(prompt, timeout=900)
            return time.monotonic() - m.started_at


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


def boot_time(firmware: str) -> tuple[float, float, str, str]:
    """One boot of the appliance: seconds to its first prompt (the live serial
    console's root shell) and to multi-user, the accelerator, systemd-analyze's line."""
    with tempfile.TemporaryDirectory() as work:
        with Machine(RAW, name=f"bench-{firmware}", firmware=firmware, memory_mb=2048, workdir=Path(work)) as m:
            m.wait_for_console_text(r"root@hypercore:~#", timeout=900)
            prompt = time.monotonic() - m.started_at
            m.wait_for_unit("multi-user.target", timeout=900)
            seconds = time.monotonic() - m.started_at
            analyze = m.succeed("systemd-analyze time | head -n1").strip()
            return prompt, seconds, m.accel, analyze


def packed_size(raw: Path) -> int:
    """Bytes of the image packed as an appliance keeps it for network installs
    (hypercore_installer.imagefile.compress): what a network install downloads."""
    from hypercore_installer.imagefile import compress
    with tempfile.NamedTemporaryFile(dir=BUILD) as out:
        compress(str(raw), out.name)
        return os.path.getsize(out.name)


# The goals of the speed issue for what the appliance tests measure.
SUITE_GOALS = {"install": "≤ 60 s", "USB power-on to HEALTH_OK": "≤ 300 s",
               "node2: approved to HEALTH_OK at size 2": "≤ 120 s"}


def suite_rows() -> list[tuple[str, str, str]]:
    """The timings tests/appliance wrote (bench-install/netboot/scaleout.json), each dated."""
    rows = []
    for name, label, fmt in (("install", "USB install", ".0f"), ("netboot", "netboot client", ".1f"),
                             ("scaleout", "scale out", ".0f")):
        path = BUILD / f"bench-{name}.json"
        if not path.exists():
            rows.append((f"{label}: not measured", f"(no {path.name}: run tests/appliance)", ""))
            continue
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(path.stat().st_mtime))
        times = json.loads(path.read_text())
        if name == "install" and {"live boot", "install", "installed boot + first boot"} <= times.keys():
            times["USB power-on to HEALTH_OK"] = (times["live boot"] + times["install"]
                                                  + times["installed boot + first boot"])
        for what, seconds in times.items():
            rows.append((f"{label}: {what} ({when} UTC)", f"{seconds:{fmt}} s", SUITE_GOALS.get(what, "")))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", action="store_true", help="also time a build from an empty cache")
    ap.add_argument("--install", action="store_true",
                    help="also run tests/appliance (install, VMs, netboot clients, a second node joining, "
                         "and with --heavy its failure and removal) and show their timings")
    ap.add_argument("--heavy", action="store_true", help="with --install: the heavy multi-node cases too")
    ap.add_argument("--results", action="store_true",
                    help="also show the appliance timings the last run of tests/appliance left in build/ "
                         "(bench-*.json), with their dates, without running it again")
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []
    if args.cold:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as cache:
            rows.append(("cold build (empty cache)", f"{timed_build(Path(cache)):.0f} s", ""))
    rows.append(("warm build (cached packages; after a Python-only change nothing more is rebuilt)",
                 f"{timed_build(None):.0f} s", "≤ 60 s"))
    gib = 2**30
    st = RAW.stat()
    rows.append(("raw image size", f"{st.st_size / gib:.2f} GiB", ""))
    rows.append(("allocated (sparse) size", f"{st.st_blocks * 512 / gib:.2f} GiB", "≤ 1.4 GiB"))
    rows.append(("root filesystem used", f"{root_fs_used(RAW) / gib:.2f} GiB", ""))
    allocated = st.st_blocks * 512
    rows.append(("zstd -3 compressed", f"{zstd_size(RAW) / gib:.2f} GiB", "≤ 0.45 GiB"))
    wire = packed_size(RAW)
    rows.append(("network install: bytes on the wire (the image as an appliance keeps it: zstd, sparse) / "
                 "the image's allocated bytes", f"{wire / gib:.2f} GiB / {allocated / gib:.2f} GiB = "
                 f"{wire / allocated:.2f}", "≤ 0.6 GiB"))
    initrd = BUILD / "netboot" / "initrd"
    rows.append(("netboot initrd", f"{initrd.stat().st_size / 2**20:.0f} MiB", ""))
    for name in ("root.squashfs", "netroot-initrd.img"):
        rows.append((f"netboot client {name}", f"{(BUILD / 'netboot' / name).stat().st_size / 2**20:.0f} MiB", ""))
    reference = build_reference(DEFAULT_CACHE)
    for firmware in ("uefi", "bios"):
        ours, seconds, accel, analyze = boot_time(firmware)
        rows.append((f"boot to multi-user, {firmware.upper()} ({accel.upper()})",
                     f"{seconds:.0f} s", ""))
        print(f"# {firmware}: {analyze}", file=sys.stderr)
        floor = first_prompt(reference, firmware, r"reference login:")
        rows.append((f"power-on to the first prompt, {firmware.upper()} ({accel.upper()}): "
                     f"appliance / reference (kernel + systemd)",
                     f"{ours:.0f} s / {floor:.0f} s = {ours / floor:.2f}", "≤ 40 s"))
    if args.install:
        # The installed appliance and what runs against it: install, VMs, netboot clients.
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", str(TOP / "tests" / "appliance")]
                       + (["--heavy"] if args.heavy else []), check=True, cwd=TOP)
    if args.install or args.results:
        rows += suite_rows()
    print("| measure | value | target |\n|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
