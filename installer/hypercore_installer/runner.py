"""The one runner every install step changes the machine through.

`Runner` runs commands (via hypercore.run.run) and writes files; `DryRunner`
prints the same actions instead. Steps never ask which one they have, so a
dry run walks exactly the code of a real run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence

from hypercore.files import write_atomic
from hypercore.run import CommandError, run, spawn

from .imagefile import copy_ranges, ext4_ranges, image_ranges
from .sizes import human

# mtools on a partition or an image: no geometry check against the whole disk.
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}

# Filesystems whose freeze makes a consistent copy (vfat cannot be frozen).
FREEZABLE = ("ext4", "ext3", "ext2", "btrfs", "xfs")


def mounted_filesystems(lsblk_json: str, mounts: str) -> list[str]:
    """Mount points of the freezable filesystems on a disk: its mount points from
    `lsblk -J -o MOUNTPOINTS DISK`, their types from /proc/self/mounts (lsblk's
    FSTYPE needs udev's database, which a container may lack)."""
    points: list[str] = []

    def walk(dev):
        points.extend(m for m in dev.get("mountpoints") or [] if m)
        for child in dev.get("children") or []:
            walk(child)

    for dev in json.loads(lsblk_json or "{}").get("blockdevices", []):
        walk(dev)
    types = {}
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            types[fields[1].replace("\\040", " ")] = fields[2]
    return [m for m in dict.fromkeys(points) if types.get(m) in FREEZABLE]


class Runner:
    """Does what it is told, for real."""

    dry_run = False

    def __init__(self, out=None):
        self.out = out or sys.stdout

    def say(self, text: str) -> None:
        """A line for the operator (progress, what a step is about to do)."""
        print(text, file=self.out, flush=True)

    def run(self, argv: Sequence[str], *, input: str | None = None, ok: Sequence[int] = (0,),
            secret: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run argv; exit codes in `ok` are success, anything else CommandError.
        `secret` marks input that must never be printed."""
        proc = run(argv, input=input, check=False, env=env)
        if proc.returncode not in ok:
            raise CommandError(argv, proc.returncode, proc.stdout or "", proc.stderr or "")
        return proc

    def query(self, argv: Sequence[str], *, env: dict | None = None) -> bytes:
        """Run a command that only reads (from the target) and return its stdout."""
        proc = run(argv, check=False, env=env, text=False)
        if proc.returncode != 0:
            raise CommandError(argv, proc.returncode, "", (proc.stderr or b"").decode(errors="replace"))
        return proc.stdout

    def available(self, program: str) -> bool:
        return shutil.which(program) is not None

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def write_file(self, path: str, data: str | bytes, mode: int = 0o644, secret: bool = False) -> None:
        """Replace path atomically; keeps an existing file's owner and group.
        `secret` marks contents that must never be printed."""
        raw = data.encode() if isinstance(data, str) else data
        write_atomic(path, raw, mode, keep_owner=True)

    def makedirs(self, path: str, mode: int = 0o755) -> None:
        os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(path, mode)

    def remove(self, path: str) -> None:
        """Remove a file or symlink; nothing if it is not there."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def symlink(self, target: str, path: str) -> None:
        self.remove(path)
        os.symlink(target, path)

    def zero_fat_file(self, device: str, offset: int, path: str) -> None:
        """Overwrite with zeros, in place, the clusters of the file path (`::/...`)
        on the FAT filesystem at byte offset of device; nothing if it is not there."""
        from . import fat
        shown = run(["mshowfat", "-i", f"{device}@@{offset}", path], check=False, env=MTOOLS_ENV)
        if shown.returncode != 0:
            return
        with open(device, "r+b", buffering=0) as f:
            f.seek(offset)
            ranges = fat.byte_ranges(f.read(512), fat.chain(shown.stdout))
            for start, length in ranges:
                f.seek(offset + start)
                f.write(bytes(length))
            os.fsync(f.fileno())

    def download(self, url: str, target: str, nbytes: int, sha256: str) -> None:
        """Write the first nbytes found at url onto target (installing over the network),
        checked against sha256 before its first MiB (the partition table) is written."""
        from .netsource import download
        download(url, target, nbytes, sha256, self.say)

    def copy_image(self, source: str, path: str, nbytes: int, partitions: Sequence[dict] = ()) -> None:
        """Copy the image in the first nbytes of source (opened read-only) to the
        disk or new sparse file path: of its partitions (the plan's view of
        them) only what their filesystems use (ext4: the blocks dumpe2fs does
        not list as free), in long sequential reads. Without partitions, all nbytes."""
        if stat.S_ISBLK(os.stat(source).st_mode):
            # The whole disk's page cache is not the one its mounted partitions
            # write through: what an earlier read left there may be old.
            self.run(["blockdev", "--flushbufs", source])
        ranges, ext4 = image_ranges(source, nbytes, list(partitions))
        whole = []
        for offset, size in ext4:
            # libext2fs's `?offset=`: the filesystem inside the disk (its root mounted: frozen by the caller)
            listing = self.run(["dumpe2fs", f"{source}?offset={offset}"], ok=range(0, 256))
            said = (listing.stderr or "").strip().splitlines()
            why = said[-1] if said else f"exit status {listing.returncode}"
            if listing.returncode == 0:
                try:
                    ranges += ext4_ranges(listing.stdout, offset)
                    continue
                except ValueError as e:
                    why = str(e)
            ranges.append((offset, size))          # as dd would: all of it
            whole.append(f"the ext4 filesystem at byte {offset} whole (dumpe2fs: {why})")
        copied = copy_ranges(source, path, nbytes, sorted(ranges))
        self.say(f"    copied {human(copied)} of the {human(nbytes)} image: what its filesystems use"
                 + "".join(f"; {w}" for w in whole))

    @contextlib.contextmanager
    def frozen(self, disk: str) -> Iterator[list[str]]:
        """The filesystems of disk that are mounted (the live medium's own root,
        when installing from it) frozen for the duration of the block: a copy
        made meanwhile is a consistent, unchanging snapshot. Writers on them
        wait; nothing in the block may write there. The freeze is held by a
        guard process (freezeguard) that unfreezes when this process lets go
        or dies, so a crash never leaves the root frozen."""
        listing = run(["lsblk", "-J", "-o", "MOUNTPOINTS", disk], check=False)
        with open("/proc/self/mounts", encoding="utf-8") as f:
            points = mounted_filesystems(listing.stdout, f.read()) if listing.returncode == 0 else []
        if not points:
            yield points
            return
        argv = [sys.executable, "-m", "hypercore_installer.freezeguard", *points]
        guard = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert guard.stdin is not None and guard.stdout is not None and guard.stderr is not None
        try:
            if guard.stdout.readline().strip() != b"frozen":
                guard.stdin.close()
                guard.wait()
                raise CommandError(argv, guard.returncode, "", guard.stderr.read().decode(errors="replace"))
            yield points
        finally:
            if not guard.stdin.closed:
                guard.stdin.close()
            guard.wait()

    def sha256(self, path: str) -> str:
        from hypercore.digest import sha256_file
        return sha256_file(path)

    def pack_image(self, path: str, out_path: str) -> str:
        """path zstd-compressed into out_path; the SHA-256 of what was written."""
        from .imagefile import compress
        return compress(path, out_path)

    @contextlib.contextmanager
    def mounted(self, device: str, mountpoint: str, options: str | None = None) -> Iterator[str]:
        """Mount device at mountpoint for the duration of the block."""
        self.makedirs(mountpoint, 0o700)
        self.run(["mount", *(["-o", options] if options else []), device, mountpoint])
        try:
            yield mountpoint
        finally:
            self.run(["umount", mountpoint])


class DryRunner(Runner):
    """Prints every action as a command line; changes nothing."""

    dry_run = True

    def run(self, argv, *, input=None, ok=(0,), secret=False, env=None):
        line = shlex.join(str(a) for a in argv)
        if input is not None:
            line += "  <<< " + ("(secret, not shown)" if secret else " ".join(input.strip().splitlines()))
        self.say(f"+ {line}")
        return subprocess.CompletedProcess(list(argv), 0, "", "")

    def query(self, argv, *, env=None) -> bytes:
        """Nothing to read on a target that a dry run has not written."""
        return b""

    def available(self, program: str) -> bool:
        return True

    def exists(self, path: str) -> bool:
        """A dry run shows the work for a blank target: nothing exists yet."""
        return False

    def write_file(self, path, data, mode=0o644, secret=False):
        text = data if isinstance(data, str) and not secret else f"({len(data)} bytes, not shown)"
        self.say(f"+ write {path} (mode {mode:04o}):")
        for line in text.rstrip("\n").splitlines():
            self.say(f"    {line}")

    def makedirs(self, path, mode=0o755):
        self.say(f"+ mkdir -p -m {mode:04o} {path}")

    @contextlib.contextmanager
    def frozen(self, disk):
        self.say(f"+ fsfreeze --freeze the mounted filesystems of {disk} (the live root), until the copy is done")
        yield []

    def zero_fat_file(self, device, offset, path):
        self.say(f"+ zero the clusters of {path} on {device}@@{offset} in place")

    def download(self, url, target, nbytes, sha256):
        self.say(f"+ download {url} (first {nbytes} bytes, sha256 {sha256}) onto {target}")

    def copy_image(self, source, path, nbytes, partitions=()):
        self.say(f"+ copy {source} (the image in its first {nbytes} bytes, read-only) to {path}: what its "
                 "filesystems use, ext4's used blocks by dumpe2fs")

    def sha256(self, path):
        self.say(f"+ sha256 {path}")
        return "(the sha256 of " + path + ")"

    def pack_image(self, path, out_path):
        self.say(f"+ zstd -1 {path} > {out_path} (and its sha256)")
        return "(the sha256 of " + out_path + ")"

    def remove(self, path):
        self.say(f"+ rm -f {path}")

    def symlink(self, target, path):
        self.say(f"+ ln -sfn {target} {path}")
