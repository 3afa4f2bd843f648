"""Build the Hypercore image with mkosi (called by tools/build-image).

Steps: build this project's wheel, run mkosi with its caches outside the
repository, then lay out build/: hypercore.raw, netboot/ (kernel, initrd,
UKI) and SHA256SUMS. A failed step prints the command and its output's tail,
not a traceback.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))

from hypercore.errors import UserError, report  # noqa: E402
from hypercore.run import CommandError, run  # noqa: E402

DEFAULT_CACHE = Path(os.environ.get("HYPERCORE_CACHE_DIR", "/var/cache/hypercore"))
BUILD = Path(os.environ.get("HYPERCORE_BUILD_DIR", TOP / "build"))


def build_wheel(out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run(["/usr/bin/python3", "-m", "build", "--wheel", "--no-isolation",
         "--outdir", out, TOP], cwd=TOP, tee=BUILD / "wheel.log")
    wheels = list(out.glob("hypercore-*.whl"))
    if len(wheels) != 1:
        raise UserError(f"expected one wheel in {out}, found {len(wheels)}")
    return wheels[0]


def run_mkosi(cache: Path, outdir: Path, verbose: bool, extra: list[str]) -> None:
    try:
        for sub in ("incremental", "packages"):
            (cache / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot use {cache} as the build cache: {e.strerror}",
                        hint="pass --cache-dir DIR (or set HYPERCORE_CACHE_DIR) "
                             "to a writable directory") from None
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    run(["mkosi", "--directory", TOP,
         "--output-dir", outdir,
         "--cache-dir", cache / "incremental",
         "--package-cache-dir", cache / "packages",
         "--incremental=yes", "--force", *extra, "build"],
        cwd=TOP, tee=BUILD / "mkosi.log", echo=verbose)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


NETROOT_LABEL = "hypercore-netroot"


def extract_netroot(raw: Path, netboot: Path) -> list[Path]:
    """build/netboot/root.squashfs (the image's netroot partition) and the
    netboot client's initramfs netroot-initrd.img taken out of it: with
    vmlinuz, the files a PXE client fetches from the appliance."""
    table = json.loads(run(["sfdisk", "--json", str(raw)]).stdout)["partitiontable"]
    parts = [p for p in table["partitions"] if p.get("name") == NETROOT_LABEL]
    if len(parts) != 1:
        raise UserError(f"{raw} has no partition labelled {NETROOT_LABEL}",
                        hint="check mkosi.conf.d/repart/08-netroot.conf")
    sector = table.get("sectorsize", 512)
    out = netboot / "root.squashfs"
    with raw.open("rb") as src, out.open("wb") as dst:
        src.seek(parts[0]["start"] * sector)
        left = parts[0]["size"] * sector
        while left:
            chunk = src.read(min(left, 8 << 20))
            if not chunk:
                raise UserError(f"{raw} ends inside its {NETROOT_LABEL} partition")
            dst.write(chunk)
            left -= len(chunk)
    tree = netboot / ".unsquash"
    shutil.rmtree(tree, ignore_errors=True)
    run(["unsquashfs", "-q", "-n", "-d", tree, out, "usr/lib/hypercore/netboot/initrd.img"],
        timeout=600)
    initrd = tree / "usr/lib/hypercore/netboot/initrd.img"
    if not initrd.is_file():
        raise UserError("the image has no /usr/lib/hypercore/netboot/initrd.img",
                        hint=f"see mkosi.conf.d/scripts/netboot.chroot in {BUILD / 'mkosi.log'}")
    initrd.replace(netboot / "netroot-initrd.img")
    shutil.rmtree(tree)
    return [out, netboot / "netroot-initrd.img"]


def lay_out(outdir: Path) -> list[Path]:
    """Move mkosi's outputs to build/ and build/netboot/; return the artifacts."""
    raw = outdir / "hypercore.raw"
    if not raw.exists():
        raise UserError(f"mkosi finished but wrote no {raw}", hint=f"see {BUILD / 'mkosi.log'}")
    netboot = BUILD / "netboot"
    shutil.rmtree(netboot, ignore_errors=True)
    netboot.mkdir()
    artifacts = [BUILD / "hypercore.raw"]
    raw.replace(artifacts[0])
    for suffix, name in ((".vmlinuz", "vmlinuz"), (".initrd", "initrd"), (".efi", "hypercore.efi")):
        src = outdir / f"hypercore{suffix}"
        if src.exists():
            src.replace(netboot / name)
            artifacts.append(netboot / name)
    if not (netboot / "vmlinuz").exists() or not (netboot / "initrd").exists():
        raise UserError("mkosi wrote no kernel/initrd for netboot", hint=f"see {BUILD / 'mkosi.log'}")
    artifacts += extract_netroot(artifacts[0], netboot)
    sums = "".join(f"{sha256(p)}  {p.relative_to(BUILD)}\n" for p in artifacts)
    (BUILD / "SHA256SUMS").write_text(sums)
    shutil.rmtree(outdir, ignore_errors=True)
    return artifacts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools/build-image",
        description="Install the host prerequisites (tools/host-prereqs), then build "
                    "build/hypercore.raw, build/netboot/ and build/SHA256SUMS with mkosi.")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                    help="mkosi's incremental and package caches (default: %(default)s, "
                         "or $HYPERCORE_CACHE_DIR)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show mkosi's output as it runs")
    ap.add_argument("mkosi_args", nargs="*", metavar="-- MKOSI_ARG",
                    help="extra mkosi options after --, e.g. -- --debug")
    args = ap.parse_args(argv)
    BUILD.mkdir(exist_ok=True)
    lock = (BUILD / ".build.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("hypercore: another image build is running in this checkout; waiting for it",
              file=sys.stderr)
        fcntl.flock(lock, fcntl.LOCK_EX)
    timings = {}
    try:
        t = time.monotonic()
        print("hypercore: building the Python wheel", file=sys.stderr)
        wheel = build_wheel(BUILD / "wheel")
        timings["wheel_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        print(f"hypercore: running mkosi (log: {BUILD / 'mkosi.log'})", file=sys.stderr)
        run_mkosi(args.cache_dir, BUILD / "mkosi.out", args.verbose, args.mkosi_args)
        timings["mkosi_s"] = round(time.monotonic() - t, 1)
        artifacts = lay_out(BUILD / "mkosi.out")
    except CommandError as e:
        print(f"hypercore: image build failed: {e}", file=sys.stderr)
        return 1
    except UserError as e:
        return report(e)
    (BUILD / "build-info.json").write_text(json.dumps(
        {"wheel": wheel.name, **timings,
         "artifacts": {str(p.relative_to(BUILD)): p.stat().st_size for p in artifacts}},
        indent=2) + "\n")
    for p in artifacts:
        print(f"  {p.relative_to(TOP)}  {p.stat().st_size / 2**20:.0f} MiB")
    print(f"hypercore: image built in {sum(timings.values()):.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
