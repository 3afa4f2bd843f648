"""The build entry points fail well: one line naming the problem, no traceback."""

from __future__ import annotations

import os
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
