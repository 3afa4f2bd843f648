"""Real installs on loop devices: a small fake image on one, a blank sparse
10 GiB target, a 6 GiB "old data" disk becoming a Ceph OSD. Runs
hypercore-install as a separate process, as an operator would."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.installer.conftest import cli_env, run_cli
from hypercore.run import run
from hypercore_netboot import artifacts
from tests.installer.loopdisks import (GiB, LIVE_MACHINE_ID, LIVE_SECRET, MiB, loop_device, make_ext4_disk, make_source_image, part,
                       release_mounts_under, sha256_of, sparse_file)

pytestmark = pytest.mark.integration

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g admin@laptop"
HASH = "$6$hypercore$8GyS5Fk9LxnNm.Vmd1FUmpTvuP3sUqtkxUabuI.SiDdoVHzdz/bU64h0i7E48mOpuBX7/e6mQlt/6J9dQIHAw0"


def _needs_loop_devices():
    if os.geteuid() != 0 or not shutil.which("losetup") or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root and loop devices")


@dataclass
class Lab:
    tmp: Path
    source: str
    target: str
    osd: str
    files: dict

    @property
    def workdir(self) -> Path:
        return self.tmp / "work"

    @property
    def journal(self) -> Path:
        return self.workdir / "journal.json"

    def answers(self, **changes) -> Path:
        doc = {
            "target": {"path": self.target, "root_size": "4G"},
            "wipe": True,
            "hostname": "node1.lab.example",
            "timezone": "Europe/Lisbon",
            "network": {"mode": "static", "interface": "eth0", "address": "192.168.1.21/24",
                        "gateway": "192.168.1.1", "dns": ["192.168.1.1"]},
            "root": {"ssh_keys": [KEY], "password_hash": HASH},
            "ceph": {"mode": "new", "osd_disks": [self.osd]},
        }
        doc.update(changes)
        path = self.tmp / "answers.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def apply(self, answers: Path, *extra, env=None):
        return run_cli("apply", answers, "--yes", "--source-disk", self.source, "--workdir", self.workdir,
                       *extra, env=env)


@pytest.fixture
def lab(tmp_path):
    _needs_loop_devices()
    files = {"source": make_source_image(tmp_path),
             "target": sparse_file(tmp_path / "target.img", 10 * GiB),
             "osd": make_ext4_disk(tmp_path, "osd.img", 6 * GiB)}
    with contextlib.ExitStack() as stack:
        devs = {name: stack.enter_context(loop_device(path)) for name, path in files.items()}
        stack.callback(release_mounts_under, tmp_path)
        yield Lab(tmp_path, devs["source"], devs["target"], devs["osd"], files)


@contextlib.contextmanager
def mounted(device: str, where: Path, options: str = "ro"):
    where.mkdir(parents=True, exist_ok=True)
    run(["mount", "-o", options, device, str(where)])
    try:
        yield where
    finally:
        run(["umount", str(where)])


def table(dev: str) -> dict:
    return json.loads(run(["sfdisk", "-J", dev]).stdout)["partitiontable"]


def fs_uuid(dev: str) -> str:
    return run(["blkid", "-p", "-s", "UUID", "-o", "value", dev]).stdout.strip()


def esp_file(dev: str, path: str) -> bytes:
    return run(["mtype", "-i", part(dev, 1), path], env={"MTOOLS_SKIP_CHECK": "1"}, text=False).stdout


def test_install_on_loop_devices(lab):
    source_hash = sha256_of(lab.files["source"])
    src_table, src_root_fs, src_esp_fs = table(lab.source), fs_uuid(part(lab.source, 3)), fs_uuid(part(lab.source, 1))
    answers = lab.answers()

    proc = lab.apply(answers)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Hypercore is installed on" in proc.stdout
    assert not lab.journal.exists() and lab.journal.with_suffix(".done.json").exists()

    # Partition table: the image's three partitions with new GUIDs, the root
    # grown to 4 GiB, the data partition after it, the backup GPT at the end.
    t = table(lab.target)
    parts = t["partitions"]
    assert [p.get("name") for p in parts] == ["esp", "linux", "hypercore-root", "hypercore-data"]
    assert parts[2]["size"] * 512 == 4 * GiB
    assert parts[3]["start"] >= parts[2]["start"] + parts[2]["size"]
    assert t["lastlba"] == 10 * GiB // 512 - 34
    assert t["id"] != src_table["id"]
    src_uuids = {p["uuid"] for p in src_table["partitions"]}
    assert not src_uuids & {p["uuid"] for p in parts}
    assert [p["start"] for p in parts[:3]] == [p["start"] for p in src_table["partitions"]]

    # Filesystems: new UUIDs; the root grown; the source disk untouched.
    assert fs_uuid(part(lab.target, 3)) not in ("", src_root_fs)
    assert fs_uuid(part(lab.target, 1)) not in ("", src_esp_fs)
    assert sha256_of(lab.files["source"]) == source_hash

    # Boot configuration names the new root partition; the copied seed is gone.
    new_root = parts[2]["uuid"].lower()
    old_root = src_table["partitions"][2]["uuid"].lower()
    grub = esp_file(lab.target, "::/grub/grub.cfg").decode()
    assert f"root=PARTUUID={new_root}" in grub and old_root not in grub
    uki = esp_file(lab.target, "::/EFI/Linux/hypercore.efi")
    assert new_root.encode() in uki and old_root.encode() not in uki
    listing = run(["mdir", "-/", "-b", "-i", part(lab.target, 1), "::/"], env={"MTOOLS_SKIP_CHECK": "1"}).stdout
    assert "::/loader/random-seed" not in listing and "::/loader/loader.conf" in listing
    # Not even in its free clusters: the seed was zeroed in place before its deletion.
    assert run(["grep", "-c", "-a", "-F", LIVE_SECRET, part(lab.target, 1)], check=False).stdout.strip() == "0"

    with mounted(part(lab.target, 3), lab.tmp / "check-root") as root:
        etc = root / "etc"
        assert (root / "hypercore-image-marker").is_file()
        assert os.statvfs(root).f_blocks * os.statvfs(root).f_frsize > 3.5 * GiB
        assert (etc / "hostname").read_text() == "node1.lab.example\n"
        assert "192.168.1.21\tnode1.lab.example node1" in (etc / "hosts").read_text()
        machine_id = (etc / "machine-id").read_text().strip()
        assert len(machine_id) == 32 and machine_id != LIVE_MACHINE_ID
        assert os.readlink(etc / "localtime") == "../usr/share/zoneinfo/Europe/Lisbon"
        assert (etc / "timezone").read_text() == "Europe/Lisbon\n"
        assert not (etc / "ssh/ssh_host_ed25519_key").exists() and (etc / "ssh/sshd_config").exists()
        assert not (root / "var/lib/systemd/random-seed").exists()
        assert not (etc / "hypercore/live").exists()
        assert not (etc / "systemd/system/serial-getty@ttyS0.service.d").exists()
        assert not (etc / "systemd/network/80-hypercore-dhcp.network").exists()
        network = (etc / "systemd/network/10-hypercore.network").read_text()
        assert "Name=eth0" in network and "Address=192.168.1.21/24" in network and "Gateway=192.168.1.1" in network
        keys = root / "root/.ssh/authorized_keys"
        assert keys.read_text() == KEY + "\n"
        assert stat.S_IMODE(keys.stat().st_mode) == 0o600
        assert stat.S_IMODE((root / "root/.ssh").stat().st_mode) == 0o700
        shadow = (etc / "shadow").read_text()
        assert shadow.startswith(f"root:{HASH}:")
        assert stat.S_IMODE((etc / "shadow").stat().st_mode) == 0o640
        saved = etc / "hypercore/answers.yaml"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert yaml.safe_load(saved.read_text()) == yaml.safe_load(answers.read_text())
        record = json.loads((etc / "hypercore/install.json").read_text())
        assert record["disks"]["target"]["path"] == lab.target
        assert record["disks"]["osd"][0]["path"] == lab.osd
        fstab = (etc / "fstab").read_text()
        data_uuid = fs_uuid(part(lab.target, 4))
        assert f"UUID={data_uuid}\t/var/lib\tbtrfs\tsubvol=@var-lib,nosuid,nodev,noatime,compress=zstd:1\t0\t0" in fstab
        assert (f"UUID={data_uuid}\t/var/lib/hypercore/shared\tbtrfs\tsubvol=@var-lib/hypercore/shared,"
                "nosuid,nodev,noexec,noatime,compress=zstd:1\t0\t0") in fstab
        assert record["data_filesystem_uuid"] == data_uuid

    # BTRFS: the subvolume layout, /var/lib copied into @var-lib.
    with mounted(part(lab.target, 4), lab.tmp / "check-data", "ro,subvolid=5") as top:
        listing = run(["btrfs", "subvolume", "list", str(top)]).stdout
        subvols = [line.split(" path ")[1] for line in listing.splitlines()]
        assert subvols == ["@var-lib", "@var-lib/hypercore", *(f"@var-lib/hypercore/{s}" for s in
                           ("images", "vms", "shared", "iso", "tftpboot", ".snapshots"))]
        assert (top / "@var-lib/dpkg/status").read_text() == "Package: hypercore-test\n"

    # The OSD disk: no signature left, first MiB zeroed.
    assert run(["wipefs", "--no-act", "-J", lab.osd]).stdout.strip() in ("", '{\n   "signatures": [\n\n   ]\n}')
    with open(lab.osd, "rb") as f:
        assert f.read(MiB) == bytes(MiB)


def test_a_refused_disk_is_not_touched(lab, tmp_path):
    """wipe: false and a target holding ext4: refused, byte for byte unchanged."""
    old = make_ext4_disk(tmp_path, "old-target.img", 9 * GiB)
    with loop_device(old) as dev:
        before = sha256_of(old), sha256_of(lab.files["osd"]), sha256_of(lab.files["source"])
        answers = lab.answers(target={"path": dev, "root_size": "4G"}, wipe=False)
        proc = lab.apply(answers)
        assert proc.returncode == 1
        assert f"target ({dev}): holds data: an ext4 filesystem labelled 'olddata'" in proc.stderr
        assert f"ceph.osd_disks[0] ({lab.osd}): holds data" in proc.stderr
        assert "set `wipe: true`" in proc.stderr and "Traceback" not in proc.stderr
        assert "+ " not in proc.stdout and "[1/" not in proc.stdout
        assert (sha256_of(old), sha256_of(lab.files["osd"]), sha256_of(lab.files["source"])) == before
        assert not lab.journal.exists()


def test_typing_the_wrong_disk_name_cancels(lab):
    before = sha256_of(lab.files["target"])
    answers = lab.answers()
    proc = run_cli("apply", answers, "--source-disk", lab.source, "--workdir", lab.workdir, input="sdX\n")
    assert proc.returncode == 1
    assert "Type the target disk's name" in proc.stdout
    assert "cancelled: the target disk's name was not typed; nothing was changed" in proc.stderr
    assert sha256_of(lab.files["target"]) == before and not lab.journal.exists()


def test_killed_install_resumes(lab):
    answers = lab.answers()
    env = cli_env()
    env["HYPERCORE_INSTALL_CRASH_AFTER"] = "grow-root"
    crashed = lab.apply(answers, env=env)
    assert crashed.returncode == -9
    state = json.loads(lab.journal.read_text())
    assert state["done"] == ["copy-image", "new-partition-ids", "new-filesystem-ids", "fix-boot-references",
                             "grow-root"]
    # A mount left behind by an interrupted run is released before resuming.
    stale = lab.workdir / "mnt" / "root"
    run(["mount", part(lab.target, 3), str(stale)])

    resumed = lab.apply(answers)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"unmounting {stale} (left by an interrupted run)" in resumed.stdout
    assert "(5 of 16 steps done)" in resumed.stdout
    assert resumed.stdout.count("done before, skipped") == 5
    # The identifiers chosen before the crash are the ones on the disk now.
    assert table(lab.target)["id"].lower() == state["ids"]["disk"]
    with mounted(part(lab.target, 3), lab.tmp / "check-root") as root:
        assert (root / "etc/hostname").read_text() == "node1.lab.example\n"
        assert (root / "etc/machine-id").read_text().strip() == state["ids"]["machine-id"]
    assert fs_uuid(part(lab.target, 4)) == state["ids"]["fs:data"]


def test_probe_and_plan_on_this_machine(lab, tmp_path):
    """The real collector: loop disks with their signatures; a mounted disk
    is refused naming its mount point; this host's disk is the boot medium."""
    with mounted(part(lab.source, 3), tmp_path / "busy"):
        proc = run_cli("probe")
        assert proc.returncode == 0, proc.stderr
        m = json.loads(proc.stdout)
        by_path = {d["path"]: d for d in m["disks"]}
        assert [p["partlabel"] for p in by_path[lab.source]["partitions"]] == ["esp", "linux", "hypercore-root"]
        assert by_path[lab.source]["mounts"] == [{"device": part(lab.source, 3)[5:], "mountpoint": str(tmp_path / "busy")}]
        assert [s["type"] for s in by_path[lab.osd]["signatures"]] == ["ext4"]
        assert by_path[lab.target]["signatures"] == []
        assert [d["path"] for d in m["disks"] if d["boot_medium"]] == [m["root_source"]]

        answers = lab.answers(ceph={"mode": "new", "osd_disks": [lab.source]})
        proc = run_cli("plan", answers, "--source-disk", lab.target)
        assert proc.returncode == 1
        assert f"ceph.osd_disks[0] ({lab.source}): is in use: mounted ({part(lab.source, 3)[5:]} at {tmp_path}/busy)" \
            in proc.stderr
        assert f"source ({lab.target}): {lab.target} is not a Hypercore image" in proc.stderr


BUILT_IMAGE = Path(__file__).resolve().parents[2] / "build" / "hypercore.raw"


@pytest.mark.skipif(not BUILT_IMAGE.exists(), reason="build/hypercore.raw is not built")
def test_install_from_the_built_image(tmp_path):
    """The real image (read-only) onto an 8 GiB disk full of old bytes: only
    what its filesystems use is copied (the old bytes elsewhere harm nothing),
    its grub.cfg gets the new root PARTUUID, its filesystems check clean and
    hold the image's files, /var/lib (with Ceph's directories and owners)
    moves into @var-lib, the live bits go."""
    _needs_loop_devices()
    target_file = sparse_file(tmp_path / "target.img", 8 * GiB)
    image_bytes = BUILT_IMAGE.stat().st_size
    with open(target_file, "r+b") as f:          # a disk that held something else before
        old = bytes([0xA5]) * (4 * MiB)
        for _ in range(-(-image_bytes // len(old))):
            f.write(old)
    osd_file = sparse_file(tmp_path / "osd.img", 6 * GiB)
    with contextlib.ExitStack() as stack:
        source = run(["losetup", "--find", "--show", "--read-only", str(BUILT_IMAGE)]).stdout.strip()
        stack.callback(run, ["losetup", "-d", source], check=False)
        stack.callback(run, ["partx", "-d", source], check=False)
        run(["partx", "-u", source])
        target = stack.enter_context(loop_device(target_file))
        osd = stack.enter_context(loop_device(osd_file))
        stack.callback(release_mounts_under, tmp_path)
        src = table(source)
        answers = tmp_path / "answers.yaml"
        answers.write_text(yaml.safe_dump({
            "target": {"path": target}, "hostname": "built1", "root": {"ssh_keys": [KEY]},
            "ceph": {"mode": "new", "osd_disks": [osd]}}))
        proc = run_cli("apply", answers, "--yes", "--source-disk", source, "--workdir", tmp_path / "work")
        assert proc.returncode == 0, proc.stdout + proc.stderr

        t = table(target)
        root_part = next(p for p in t["partitions"] if p["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")
        # The image's root is its last partition (after the ESP, BIOS boot and netroot).
        root_n = t["partitions"].index(root_part) + 1
        assert [p.get("name") for p in t["partitions"]][:root_n] == ["esp", "linux", "hypercore-netroot",
                                                                     "hypercore-root"]
        old_root = next(p for p in src["partitions"] if p["type"] == root_part["type"])["uuid"]
        grub = esp_file(target, "::/grub/grub.cfg").decode()
        assert f"root=PARTUUID={root_part['uuid'].lower()}" in grub and old_root.lower() not in grub
        copied = re.search(r"copied ([\d.]+) GiB of the ([\d.]+) GiB image", proc.stdout)
        assert copied and float(copied[1]) < 0.75 * float(copied[2]), proc.stdout
        assert run(["e2fsck", "-f", "-n", part(target, root_n)], check=False).returncode == 0
        assert run(["fsck.vfat", "-n", part(target, 1)], check=False).returncode == 0
        netroot = [part(d, 3) for d in (source, target)]
        length = artifacts.squashfs_extent(netroot[0])[0]
        assert len({hashlib.sha256(Path(n).read_bytes()[:length]).hexdigest() for n in netroot}) == 1
        with mounted(part(target, root_n), tmp_path / "root") as root, \
                mounted(part(source, 4), tmp_path / "image-root", "ro,noload") as image_root:
            same = run(["diff", "-r", "--no-dereference", "-q", image_root / "usr", root / "usr"], check=False)
            assert same.returncode == 0, same.stdout[-2000:]
            assert (root / "etc/hostname").read_text() == "built1\n"
            assert not (root / "etc/hypercore/live").exists()
            assert not (root / "etc/systemd/system/serial-getty@ttyS0.service.d/live-autologin.conf").exists()
            assert "/var/lib\tbtrfs\tsubvol=@var-lib" in (root / "etc/fstab").read_text()
        with mounted(part(target, root_n + 1), tmp_path / "var-lib", "ro,subvol=@var-lib") as var_lib:
            ceph = var_lib / "ceph"
            assert ceph.is_dir() and ceph.stat().st_uid != 0      # the ceph user's, as in the image
            assert (var_lib / "dpkg/status").is_file() and (var_lib / "hypercore/images").is_dir()


def no_partition_table(dev: str) -> bool:
    probe = run(["blkid", "-p", "-o", "export", dev], check=False).stdout
    return run(["sfdisk", "-d", dev], check=False).returncode != 0 and "PTTYPE=" not in probe


def test_network_install_from_the_image_an_appliance_keeps(lab, tmp_path):
    """An install with netboot enabled keeps its source image on the data
    filesystem, without the live system's own state, with its SHA-256; a
    second machine installs from it over HTTP (the netboot menu's install
    entry, hypercore.source=URL and the SHA-256s) and gets the same system. A
    truncated or altered stream stops the install and leaves no partition table."""
    answers = lab.answers(netboot={"enabled": True, "interface": "eth1", "mode": "proxy"})
    proc = lab.apply(answers)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "keep this image" in proc.stdout
    image_bytes = json.loads(lab.journal.with_suffix(".done.json").read_text())["plan"]["source"]["image_bytes"]

    served = tmp_path / "served"
    second = sparse_file(tmp_path / "second.img", 10 * GiB)
    with contextlib.ExitStack() as stack:
        var_lib = stack.enter_context(mounted(part(lab.target, 4), served, "ro,subvol=@var-lib"))
        packed = var_lib / "hypercore/netboot/hypercore.raw.zst"
        packed_bytes = packed.stat().st_size
        sha = sha256_prefix(packed, packed_bytes)
        description_bytes = packed.with_name("hypercore.raw.zst.json").read_bytes()
        description = json.loads(description_bytes)
        assert description["format"] == 1 and description["source"]["image_bytes"] == image_bytes
        assert description["sha256"] == sha
        assert packed.with_name("hypercore.raw.zst.sha256").read_text() == f"{sha}  hypercore.raw.zst\n"
        assert not list(packed.parent.glob("*.copy")) and not list(packed.parent.glob("*.partial"))
        # Compressed: what goes over the wire is far less than the image.
        assert packed_bytes < image_bytes // 4, (packed_bytes, image_bytes)
        kept = tmp_path / "kept.raw"
        run(["zstd", "-q", "-d", "-o", str(kept), str(packed)])
        assert kept.stat().st_size == image_bytes
        # Not even in free blocks: the live system's host key and journal were zeroed before their deletion.
        assert run(["grep", "-c", "-a", "-F", LIVE_SECRET, str(kept)], check=False).stdout.strip() == "0"
        # The kept image holds the image's system, not the live system's own state.
        at = {k: (description["source"][k]["start"] * 512, description["source"][k]["sectors"] * 512)
              for k in ("root", "esp")}
        with mounted(str(kept), tmp_path / "kept-root",
                     "ro,noload,loop,offset={},sizelimit={}".format(*at["root"])) as root:
            assert (root / "hypercore-image-marker").is_file() and (root / "etc/ssh/sshd_config").is_file()
            assert not list((root / "etc/ssh").glob("ssh_host_*"))
            assert list((root / "var/log/journal").rglob("*")) == []
            assert not (root / "var/lib/systemd/credential.secret").exists()
            assert not (root / "var/lib/systemd/random-seed").exists()
        assert "::/loader/random-seed" not in run(["mdir", "-/", "-b", "-i", f"{kept}@@{at['esp'][0]}", "::/"],
                                                  env={"MTOOLS_SKIP_CHECK": "1"}).stdout

        port = stack.enter_context(http_server(var_lib / "hypercore/netboot"))
        target2 = stack.enter_context(loop_device(second))
        url = f"http://127.0.0.1:{port}/hypercore.raw.zst"
        doc = yaml.safe_load(answers.read_text())
        doc["target"]["path"] = target2
        doc["hostname"] = "node2.lab.example"
        doc["ceph"]["osd_disks"] = [lab.osd]
        (tmp_path / "answers2.yaml").write_text(yaml.safe_dump(doc))
        pins = ("--source-sha256", sha, "--source-json-sha256", hashlib.sha256(description_bytes).hexdigest())

        def install(source, work, *extra):
            return run_cli("apply", tmp_path / "answers2.yaml", "--yes", "--source-disk", source,
                           "--workdir", tmp_path / work, *extra)

        net = install(url, "work2", *pins)
        assert net.returncode == 0, net.stdout + net.stderr
        assert f"Installation source: {url} (network install)" in net.stdout
        assert f"checked against SHA-256 {sha}" in net.stdout and "keep this image" not in net.stdout
        t2 = table(target2)
        assert [p.get("name") for p in t2["partitions"]] == ["esp", "linux", "hypercore-root", "hypercore-data"]
        assert run(["e2fsck", "-f", "-n", part(target2, 3)], check=False).returncode == 0
        with mounted(part(target2, 3), tmp_path / "root2") as root:
            assert (root / "etc/hostname").read_text() == "node2.lab.example\n"
            assert (root / "hypercore-image-marker").is_file()

        # A URL that serves no image is one clear line, and nothing is written.
        before = sha256_prefix(second, 1 << 20)
        bad = install(f"http://127.0.0.1:{port}/nothing.raw", "work3", *pins)
        assert bad.returncode == 1 and "nothing.raw.json does not exist (HTTP 404)" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and sha256_prefix(second, 1 << 20) == before
        # (Missing or wrong SHA-256s are refused before anything is written: tests/installer/test_netsource.py.)

        # An altered byte, then a stream cut short: the installed disk is left with no partition table.
        for how, work in (("alter", "work6"), ("cut", "work7")):
            damaged = stack.enter_context(http_server(var_lib / "hypercore/netboot", **{how: packed_bytes // 2}))
            broken = install(f"http://127.0.0.1:{damaged}/hypercore.raw.zst", work, *pins)
            assert broken.returncode == 1, broken.stdout + broken.stderr
            first = broken.stderr.splitlines()[0]
            if how == "alter":      # zstd's own checksum may see it first, else the SHA-256
                assert (f"does not match hypercore.source_sha256 from the boot menu: expected {sha}, got " in first
                        or "not a whole zstd stream" in first), first
            else:
                assert "stopped after" in first and f"of {image_bytes} bytes" in first, first
            assert f"{target2} was left without a partition table" in first and "Traceback" not in broken.stderr
            assert no_partition_table(target2), run(["sfdisk", "-d", target2], check=False).stdout


def sha256_prefix(path: Path, n: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while n > 0:
            chunk = f.read(min(n, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            n -= len(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def http_server(root: Path, alter: int | None = None, cut: int | None = None):
    """Serve root; with alter=N or cut=N, *.raw files come with byte N flipped,
    or end after N bytes (the full length announced)."""
    import functools
    import http.server
    import shutil as _shutil
    import threading

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def copyfile(self, source, outputfile):
            if not self.path.endswith((".raw", ".zst")) or (alter is None and cut is None):
                return _shutil.copyfileobj(source, outputfile)
            head = source.read(alter if alter is not None else cut)
            outputfile.write(head)
            if cut is not None:
                self.close_connection = True
                return
            flipped = source.read(1)
            outputfile.write(bytes([flipped[0] ^ 0x01]))
            _shutil.copyfileobj(source, outputfile)

    handler = functools.partial(Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
