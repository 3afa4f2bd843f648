"""The build entry points fail well: one line naming the problem, no traceback."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]


def run(argv, env=None, **kw):
    return subprocess.run(argv, capture_output=True, text=True, cwd=TOP,
                          env={**os.environ, **(env or {})}, **kw)


def test_host_prereqs_refuses_a_non_root_user():
    proc = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                "bash", str(TOP / "tools" / "host-prereqs")])
    assert proc.returncode == 1
    assert proc.stderr.startswith("hypercore: building the image needs root")
    assert "hint: run it again as root" in proc.stderr


def test_host_prereqs_refuses_another_distribution(tmp_path):
    fake = tmp_path / "os-release"
    fake.write_text('ID=ubuntu\nVERSION_CODENAME=noble\nPRETTY_NAME="Ubuntu 24.04 LTS"\n')
    proc = run([str(TOP / "tools" / "host-prereqs")], env={"HYPERCORE_OS_RELEASE": str(fake)})
    assert proc.returncode == 1
    assert "unsupported build host: Ubuntu 24.04 LTS" in proc.stderr
    assert "Debian 12 (bookworm)" in proc.stderr


def test_host_prereqs_is_quick_when_everything_is_installed():
    proc = run([str(TOP / "tools" / "host-prereqs")], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "installing" not in proc.stderr


def build_image(tmp_path, *args):
    return run(["/usr/bin/python3", str(TOP / "tools" / "build_image.py"), *args],
               env={"HYPERCORE_BUILD_DIR": str(tmp_path / "build")}, timeout=300)


def test_failed_mkosi_step_shows_command_and_output_not_a_traceback(tmp_path):
    # A real mkosi run that fails on its command line, after the wheel was built.
    proc = build_image(tmp_path, "--cache-dir", str(tmp_path / "cache"), "--", "--no-such-option")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "hypercore: image build failed: command failed (exit 2): mkosi" in proc.stderr
    assert "--no-such-option" in proc.stderr.split("\n", 1)[1]  # mkosi's own complaint
    assert "full log:" in proc.stderr
    assert list((tmp_path / "build" / "wheel").glob("hypercore-*.whl"))


def test_unusable_cache_dir_is_one_line_with_a_hint(tmp_path):
    cache = tmp_path / "cache-is-a-file"
    cache.write_text("")
    proc = build_image(tmp_path, "--cache-dir", str(cache))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"hypercore: cannot use {cache} as the build cache" in proc.stderr
    assert "hint: pass --cache-dir DIR" in proc.stderr


def test_the_netroot_squashfs_is_zstd_compressed(netboot_dir):
    # mksquashfs's default gzip made the build's slowest step (twice, for Minimize=best).
    sb = subprocess.run(["unsquashfs", "-s", str(netboot_dir / "root.squashfs")],
                        capture_output=True, text=True, check=True).stdout
    assert "Compression zstd" in sb, sb


def _squashfs_modules(netboot_dir) -> tuple[set[str], str]:
    """The kernel modules in the image's root (the netroot squashfs is made
    from the same tree), relative to lib/modules/KVER/, and its modules.dep."""
    squashfs = str(netboot_dir / "root.squashfs")
    listing = subprocess.run(["unsquashfs", "-l", "-d", "", squashfs, "usr/lib/modules"],
                             capture_output=True, text=True, check=True).stdout
    modules = {line.split("/", 5)[5] for line in listing.splitlines() if line.endswith((".ko", ".ko.xz", ".ko.zst"))}
    kver = next(line.split("/")[4] for line in listing.splitlines() if line.count("/") >= 4)
    dep = subprocess.run(["unsquashfs", "-cat", squashfs, f"usr/lib/modules/{kver}/modules.dep"],
                         capture_output=True, text=True, check=True).stdout
    return modules, dep


def _excluded_module_patterns() -> list[str]:
    conf = (Path(__file__).resolve().parents[2] / "mkosi.conf.d" / "10-boot.conf").read_text()
    lines = conf.split("KernelModulesExclude=", 1)[1].splitlines()[1:]
    return [line.strip() for line in itertools.takewhile(lambda line: line.startswith(" "), lines)]


def test_the_image_leaves_out_the_kernel_modules_a_server_has_no_use_for(netboot_dir):
    # mkosi matches KernelModulesExclude= against lib/modules/KVER/kernel/…: a
    # pattern anchored with ^ matched nothing, and 29 MiB of sound drivers stayed.
    modules, dep = _squashfs_modules(netboot_dir)
    needs = {}
    for line in dep.splitlines():
        target, _, deps = line.partition(":")
        needs[target] = deps.split()
        for m in [target, *needs[target]]:
            assert m in modules, f"{target} needs {m}, which is not in the image"
    excluded = re.compile("|".join(_excluded_module_patterns()))
    hit = {m for m in modules if excluded.search("lib/modules/KVER/" + m)}
    # What a pattern matches stays only as a dependency of a module that is kept (drm's cec).
    needed = {d for m, deps in needs.items() if m not in hit for d in deps}
    assert hit <= needed, sorted(hit - needed)[:20]
    for gone in ("kernel/sound/pci/hda/snd-hda-intel.ko", "kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko",
                 "kernel/drivers/input/joystick/xpad.ko", "kernel/drivers/usb/gadget/libcomposite.ko"):
        assert gone not in modules, gone
    for kept in ("kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko", "kernel/fs/btrfs/btrfs.ko",
                 "kernel/drivers/usb/serial/ftdi_sio.ko", "kernel/drivers/gpu/drm/ast/ast.ko"):
        assert kept in modules, kept
