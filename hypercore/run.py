"""The one way this project runs a subprocess.

Every command is an argument list (never a shell string), is logged, and on
failure raises CommandError carrying the command, exit code and stderr.
A missing program raises a UserError that names the Debian package to install.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence

from hypercore.errors import UserError

log = logging.getLogger("hypercore.run")

# Program -> Debian package, for the "missing tool" hint.
PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "rbd": "ceph-common",
    "rados": "ceph-common",
    "ceph": "ceph-common",
    "ceph-volume": "ceph-osd",
    "ceph-mon": "ceph-mon",
    "ceph-mgr": "ceph-mgr",
    "ceph-authtool": "ceph-common",
    "monmaptool": "ceph-base",
    "mkfs.btrfs": "btrfs-progs",
    "btrfs": "btrfs-progs",
    "mkfs.ext4": "e2fsprogs",
    "mkfs.vfat": "dosfstools",
    "sfdisk": "fdisk",
    "lsblk": "util-linux",
    "wipefs": "util-linux",
    "losetup": "util-linux",
    "blkid": "util-linux",
    "dnsmasq": "dnsmasq",
    "virtiofsd": "qemu-system-common",
    "unshare": "util-linux",
    "mkosi": "mkosi (from bookworm-backports)",
    "pvs": "lvm2",
    "systemd-repart": "systemd",
    "systemd-run": "systemd",
    "/usr/lib/qemu/virtiofsd": "qemu-system-common",
    # hypercore-install (installer/hypercore_installer)
    "partx": "util-linux",
    "findmnt": "util-linux",
    "e2fsck": "e2fsprogs",
    "tune2fs": "e2fsprogs",
    "resize2fs": "e2fsprogs",
    "fatlabel": "dosfstools",
    "mdir": "mtools",
    "mtype": "mtools",
    "mcopy": "mtools",
    "mdel": "mtools",
    "chpasswd": "passwd",
    "openssl": "openssl",
    "udevadm": "udev",
    "chronyc": "chrony",
    "ip": "iproute2",
    "mount": "mount",
    "umount": "mount",
    # hypercore repo (golden-image repository)
    "ssh": "openssh-client",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    "cp": "coreutils",
}


class CommandError(Exception):
    """A command exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = (stderr or stdout).strip()
        super().__init__(
            f"command failed (exit {returncode}): {shlex.join(self.argv)}"
            + (f"\n{tail}" if tail else "")
        )


def require(program: str) -> str:
    """Return the path of program, or raise a UserError naming its package."""
    path = shutil.which(program)
    if path is None:
        pkg = PACKAGES.get(program, program)
        raise UserError(f"required tool '{program}' is not installed",
                        hint=f"install it: apt-get install {pkg}")
    return path


def _prepare(verb: str, argv: Sequence[str], env: Mapping[str, str] | None
             ) -> tuple[list[str], dict[str, str] | None]:
    """Check the program exists, log the command; env (if any) extends os.environ."""
    argv = [os.fspath(a) for a in argv]
    require(argv[0])
    log.debug("%s: %s", verb, shlex.join(argv))
    return argv, (None if env is None else {**os.environ, **env})


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float | None = None,
    capture: bool = True,
    text: bool = True,
    tee: str | os.PathLike | None = None,
    echo: bool = False,
) -> subprocess.CompletedProcess:
    """Run argv (a list, no shell). Raise CommandError on a non-zero exit.

    stdin is closed unless input is given; output is captured by default.
    With tee=PATH, stdout and stderr are merged, written to PATH as they come
    (and echoed to stderr when echo is true); a failure then carries the last
    lines of that output.
    """
    argv, full_env = _prepare("run", argv, env)
    if tee is not None:
        return _run_tee(argv, tee, echo=echo, check=check, env=full_env, cwd=cwd)
    try:
        proc = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            text=text,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise CommandError(argv, -1, "", f"timed out after {timeout} s") from e
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout or "", proc.stderr or "")
    return proc


def spawn(
    argv: Sequence[str],
    *,
    stdout=None,
    stderr=None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    new_session: bool = False,
    pass_fds: Sequence[int] = (),
    stdin=subprocess.DEVNULL,
    user: int | None = None,
    group: int | None = None,
) -> subprocess.Popen:
    """Start a long-running process (QEMU, virtiofsd, a VM runner) and return it.

    Logged like run(); stdin is closed; the caller owns the process and must
    wait for it or kill it. stdout/stderr: None (inherit), a file object or fd;
    stdin is closed unless given (a pipe or file object, for pipelines).
    user/group (uid, gid; from root): the process runs as them, with no other groups.
    """
    argv, full_env = _prepare("spawn", argv, env)
    ids = {} if user is None else {"user": user, "group": group, "extra_groups": []}
    return subprocess.Popen(
        argv, stdin=stdin, stdout=stdout, stderr=stderr, env=full_env,
        cwd=cwd, start_new_session=new_session, pass_fds=tuple(pass_fds), **ids,
    )


def _run_tee(argv, path, *, echo, check, env, cwd) -> subprocess.CompletedProcess:
    tail: list[str] = []
    with open(path, "w", encoding="utf-8") as logf, subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env, cwd=cwd, text=True, errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            logf.write(line)
            logf.flush()
            if echo:
                sys.stderr.write(line)
            tail.append(line)
            del tail[:-40]
    out = "".join(tail)
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, "", out + f"(full log: {path})")
    return subprocess.CompletedProcess(argv, proc.returncode, out, "")


def stop(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """Terminate a process we started; kill it when it has not exited after grace seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
