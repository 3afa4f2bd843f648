"""The netboot client's initramfs builder: cpio format, module closure, /init."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest

from hypercore_netboot import initrd


def fake_kernel(tmp_path: Path, compressed: bool = False) -> Path:
    mods = tmp_path / "6.1.0-test"
    kdir = mods / "kernel"
    kdir.mkdir(parents=True)
    ext = ".ko.xz" if compressed else ".ko"
    for name in ("virtio_net", "net_failover", "failover", "squashfs", "e1000"):
        data = f"module {name}".encode()
        if compressed:
            import lzma
            data = lzma.compress(data)
        (kdir / f"{name}{ext}").write_bytes(data)
    (mods / "modules.dep").write_text(
        f"kernel/virtio_net{ext}: kernel/net_failover{ext} kernel/failover{ext}\n"
        f"kernel/net_failover{ext}: kernel/failover{ext}\n"
        f"kernel/failover{ext}:\n"
        f"kernel/squashfs{ext}:\n"
        f"kernel/e1000{ext}:\n")
    (mods / "modules.builtin").write_text("kernel/fs/overlayfs/overlay.ko\n")
    return mods


def test_module_closure_puts_dependencies_first(tmp_path):
    mods = fake_kernel(tmp_path)
    files, missing = initrd.module_closure(mods, ["virtio-net", "squashfs", "overlay", "nosuch"])
    assert [f.name for f in files] == ["failover.ko", "net_failover.ko", "virtio_net.ko", "squashfs.ko"]
    # Built-in modules are not missing; unknown ones are reported.
    assert missing == ["nosuch"]


@pytest.mark.parametrize("compressed", [False, True])
def test_initrd_is_a_cpio_that_cpio_reads(tmp_path, compressed):
    mods = fake_kernel(tmp_path, compressed)
    out = tmp_path / "initrd.img"
    missing = initrd.build(mods, Path("/bin/busybox"), out, ["virtio_net", "e1000"])
    assert missing == []
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=gzip.decompress(out.read_bytes()),
                             capture_output=True, check=True).stdout.decode().split()
    assert {"init", "bin/busybox", "udhcpc.script", "lib/modules/order",
            "lib/modules/virtio_net.ko", "lib/modules/failover.ko", "lib/modules/e1000.ko"} <= set(listing)
    x = tmp_path / "x"
    x.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet"], input=gzip.decompress(out.read_bytes()), cwd=x, check=True)
    assert (x / "lib/modules/order").read_text().split() == ["failover", "net_failover", "virtio_net", "e1000"]
    # Modules are stored unpacked (busybox insmod reads plain .ko files).
    assert (x / "lib/modules/virtio_net.ko").read_bytes() == b"module virtio_net"
    assert (x / "init").stat().st_mode & 0o111
    assert (x / "bin/busybox").read_bytes() == Path("/bin/busybox").read_bytes()


def test_init_script_is_valid_shell(tmp_path):
    script = tmp_path / "init"
    script.write_text(initrd.init_script())
    subprocess.run(["/bin/busybox", "sh", "-n", str(script)], check=True)
    (tmp_path / "u").write_text(initrd.UDHCPC_SCRIPT)
    subprocess.run(["/bin/busybox", "sh", "-n", str(tmp_path / "u")], check=True)
    # It needs the URL from the kernel command line and switches to systemd.
    assert "hypercore.netroot=" in initrd.INIT and "switch_root /newroot /lib/systemd/systemd" in initrd.INIT
    # The root image is checked against the menu's SHA-256 after the download, before the mount.
    text = initrd.init_script()
    assert "@VERIFY@" not in text and "verify() {" in text
    assert text.index("wget -q -O /ram/root.squashfs") < text.index('verify /ram/root.squashfs "$sha" "$url"') \
        < text.index("mount -t squashfs")


def _verify(tmp_path, payload: bytes, expected: str):
    """/init's verify function under busybox; fail() reports and stops, as /init's would before any mount."""
    f = tmp_path / "root.squashfs"
    f.write_bytes(payload)
    script = ('fail() { echo "ERROR: $1"; echo "fix: $2"; exit 1; }\n' + initrd.VERIFY
              + f'verify {f} "{expected}" http://server/root.squashfs\necho "mounting"\n')
    proc = subprocess.run(["/bin/busybox", "sh", "-c", script], env={"PATH": "/bin:/usr/bin"},
                          capture_output=True, text=True, timeout=30)
    return proc, f


def test_the_init_check_refuses_a_root_image_with_another_sha256(tmp_path):
    import hashlib
    payload = os.urandom(3 << 20)
    good = hashlib.sha256(payload).hexdigest()
    ok, f = _verify(tmp_path, payload, good)
    assert ok.returncode == 0 and ok.stdout == "mounting\n" and f.exists(), ok
    altered = payload[:1000] + bytes([payload[1000] ^ 1]) + payload[1001:]
    bad, f = _verify(tmp_path, altered, good)
    assert bad.returncode == 1 and "mounting" not in bad.stdout and not f.exists(), bad
    assert bad.stdout.splitlines()[0] == (
        f"ERROR: http://server/root.squashfs does not match hypercore.netroot_sha256 from the boot menu "
        f"(expected {good}, got {hashlib.sha256(altered).hexdigest()}): not used")
    truncated, _ = _verify(tmp_path, payload[:-1], good)
    assert truncated.returncode == 1 and "mounting" not in truncated.stdout


def test_missing_busybox_or_modules_dep_is_one_clear_error(tmp_path):
    mods = fake_kernel(tmp_path)
    with pytest.raises(initrd.InitrdError, match="install busybox-static"):
        initrd.build(mods, tmp_path / "nobusybox", tmp_path / "out.img")
    (mods / "modules.dep").unlink()
    with pytest.raises(initrd.InitrdError, match="run depmod"):
        initrd.build(mods, Path("/bin/busybox"), tmp_path / "out.img")
    assert not (tmp_path / "out.img").exists()


def test_the_init_download_command_works_with_this_busybox(tmp_path):
    """The exact wget line of /init, run by busybox against a real HTTP server
    (busybox 1.35's `wget -T` crashes on a large download: it must not be used)."""
    import functools
    import http.server
    import re
    import threading
    (tmp_path / "www").mkdir()
    payload = os.urandom(1 << 20) * 40         # 40 MiB
    (tmp_path / "www" / "root.squashfs").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        line = next(ln for ln in initrd.INIT.splitlines() if ln.startswith("wget "))
        cmd = "/bin/busybox " + re.sub(r"\s*\|\|.*$", "", line).replace("/ram/root.squashfs",
                                                                       str(tmp_path / "got"))
        url = f"http://127.0.0.1:{server.server_address[1]}/root.squashfs"
        proc = subprocess.run(["/bin/busybox", "sh", "-c", cmd], env={"url": url, "PATH": "/bin:/usr/bin"},
                              capture_output=True, timeout=120)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc
    assert (tmp_path / "got").read_bytes() == payload
