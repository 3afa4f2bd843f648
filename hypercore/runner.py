"""The process that runs one VM: virtiofsd (when asked) and QEMU, then cleans up.

It is the main process of the transient systemd unit hypercore-vm-NAME, or a
detached process (its own session, pid file) where systemd does not manage
services. It lives exactly as long as QEMU. On SIGTERM (systemctl stop) it
presses the ACPI power button and kills QEMU after a grace period.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

from hypercore import definition, qemu_argv, rbd_claims, shared, vmuser
from hypercore.accel import Accel, detect
from hypercore.qmp import QMP
from hypercore.run import spawn, stop
from hypercore.state import Runtime, StateDir

log = logging.getLogger("hypercore.runner")

STOP_GRACE = float(os.environ.get("HYPERCORE_STOP_GRACE", "60"))
RUNTIME_FILES = ("qmp", "qga", "console", "virtiofsd", "qemu_pid", "accel")


def clean(rt: Runtime) -> None:
    """Remove what a run leaves behind; logs (console.log, runner.log) stay."""
    for attr in RUNTIME_FILES:
        getattr(rt, attr).unlink(missing_ok=True)
    (rt.dir / "vnc.sock").unlink(missing_ok=True)


def _listen(path: Path) -> socket.socket:
    """The vhost-user socket, made here as root in the VM's run directory (which
    virtiofsd, unprivileged, cannot write); virtiofsd gets the listening fd."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def start_virtiofsd(state: StateDir, rt: Runtime, user: vmuser.VMUser | None, logf) -> subprocess.Popen:
    """virtiofsd as the VMs' user; QEMU's connection waits in the socket's backlog
    until it accepts. Our copy of the socket is closed: if virtiofsd dies, QEMU's
    connection fails instead of hanging."""
    binary = shared.find_virtiofsd()
    # virtiofsd holds an fd per inode the guest has looked up: the hard limit, not 1024.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with _listen(rt.virtiofsd) as sock:
        fd = sock.fileno()
        if user is None:
            return spawn(shared.virtiofsd_argv(binary, fd, state.shared, userns=False),
                         stdout=logf, stderr=subprocess.STDOUT, pass_fds=[fd])
        return spawn(shared.virtiofsd_argv(binary, fd, state.shared, userns=True),
                     stdout=logf, stderr=subprocess.STDOUT, pass_fds=[fd], user=user.uid, group=user.gid)


def run_vm(state: StateDir, name: str, accel_name: str | None = None) -> int:
    rt = state.runtime(name)
    rt.dir.mkdir(parents=True, exist_ok=True)
    logf = open(rt.log, "a", buffering=1)
    handler = logging.StreamHandler(logf)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    root = logging.getLogger("hypercore")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    root.propagate = False  # stdout may be this same log: no second copy

    defn = definition.load(state.definition(name))
    if accel_name:
        accel = Accel(accel_name, "chosen by the starting command")
    else:
        accel = detect(defn.accel)
        rt.accel.write_text(f"{accel.name}\n{accel.reason}\n")
    rt.runner_pid.write_text(f"{os.getpid()}\n")
    term = {"at": None}
    signal.signal(signal.SIGTERM, lambda *_: term.__setitem__("at", term["at"] or time.monotonic()))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    vfs = qemu = None
    rc = 1
    try:
        user = vmuser.lookup()
        if defn.shared.virtiofs:
            vfs = start_virtiofsd(state, rt, user, logf)
        ovmf_vars = state.vm_dir(name) / "OVMF_VARS.fd" if defn.firmware == "uefi" else None
        argv = qemu_argv.build(defn, rt, accel, shared_dir=state.shared, ovmf_vars=ovmf_vars,
                               run_as=user and user.name)
        log.info("starting %s (%s%s)", name, accel.name, f", as {user.name}" if user else "")
        qemu = spawn(argv, stdout=logf, stderr=subprocess.STDOUT, cwd=state.vm_dir(name))
        powerdown_sent = False
        while qemu.poll() is None:
            if term["at"] is not None:
                if not powerdown_sent:
                    powerdown_sent = True
                    log.info("SIGTERM: pressing the ACPI power button")
                    try:
                        with QMP.connect(rt.qmp, timeout=5) as q:
                            q.execute("system_powerdown")
                    except (OSError, ValueError) as e:
                        log.info("QMP not reachable (%s): killing QEMU", e)
                        qemu.kill()
                elif time.monotonic() - term["at"] > STOP_GRACE:
                    log.info("no power-off within %.0f s: killing QEMU", STOP_GRACE)
                    qemu.kill()
            try:
                qemu.wait(0.25)
            except subprocess.TimeoutExpired:
                pass
        rc = qemu.returncode
        log.info("QEMU exited with status %s", rc)
    except Exception as e:  # noqa: BLE001 - logged for `vm start` to show
        log.error("runner failed: %s", e)
    finally:
        stop(qemu)
        stop(vfs)
        if rbd_claims.rbd_disks(defn):  # however QEMU ended: its disks are free for another node
            problems = rbd_claims.release_all(defn)
            for problem in problems:
                log.error("%s", problem)
            if not problems:
                log.info("released the claims on %s", ", ".join(d.spec for d in rbd_claims.rbd_disks(defn)))
        clean(rt)
        rt.runner_pid.unlink(missing_ok=True)
        logf.close()
    return 0 if rc in (0, -signal.SIGTERM, -signal.SIGKILL) else rc
