"""Start, stop and find running VMs.

A VM runs as the runner process (hypercore.runner): as the transient systemd
unit hypercore-vm-NAME when PID 1 is systemd and we are root, otherwise as a
detached process in its own session. Either way the state lives in
STATE/vms/NAME/run/: QEMU's pid file, the QMP, agent and console sockets.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import hypercore
from hypercore import definition, host, rbd_claims
from hypercore.errors import UserError
from hypercore.qmp import QMP, GuestAgent, QMPError
from hypercore.run import CommandError, run, spawn
from hypercore.state import Runtime, StateDir

READY_TIMEOUT = 60.0
log = logging.getLogger("hypercore.supervisor")


def unit_name(name: str) -> str:
    return f"hypercore-vm-{name}"


def _pid_alive(pid: int, expect: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state = stat[stat.rindex(")") + 2]
    except (OSError, ValueError):
        return False
    return state != "Z" and expect in comm


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def qemu_pid(rt: Runtime) -> int | None:
    """QEMU's pid when this VM's QEMU is alive, else None."""
    pid = _read_pid(rt.qemu_pid)
    return pid if pid and _pid_alive(pid, "qemu") else None


def runner_pid(rt: Runtime) -> int | None:
    pid = _read_pid(rt.runner_pid)
    return pid if pid and _pid_alive(pid, "python") else None


def is_running(state: StateDir, name: str) -> bool:
    rt = state.runtime(name)
    return qemu_pid(rt) is not None or runner_pid(rt) is not None


def runner_argv(state: StateDir, name: str, accel: str) -> list[str]:
    return [sys.executable, "-m", "hypercore", "--state-dir", str(state.root),
            "vm", "_run", name, "--accel", accel]


def _pythonpath() -> str:
    """So the runner imports this same hypercore, installed or from a checkout."""
    here = str(Path(hypercore.__file__).resolve().parent.parent)
    extra = os.environ.get("PYTHONPATH")
    return here + (os.pathsep + extra if extra else "")


def systemd_run_argv(state: StateDir, name: str, accel: str) -> list[str]:
    return ["systemd-run", f"--unit={unit_name(name)}", f"--description=Hypercore VM {name}",
            "--collect", "--property=KillMode=mixed",
            f"--property=TimeoutStopSec={int(float(os.environ.get('HYPERCORE_STOP_GRACE', '60'))) + 30}",
            f"--setenv=PYTHONPATH={_pythonpath()}", "--"] + runner_argv(state, name, accel)


def unit_state(name: str) -> str:
    """systemd's ActiveState of the VM's unit ("inactive" once it is gone: --collect)."""
    proc = run(["systemctl", "show", "-p", "ActiveState", "--value", f"{unit_name(name)}.service"], check=False)
    return (proc.stdout or "").strip() or "unknown"


@dataclass(frozen=True)
class Started:
    pid: int
    mode: str  # "systemd unit hypercore-vm-NAME" | "detached process"


def launch(state: StateDir, name: str, accel: str) -> Started:
    """Start the runner and wait until QEMU answers on QMP."""
    rt = state.runtime(name)
    rt.dir.mkdir(parents=True, exist_ok=True)
    log_start = rt.log.stat().st_size if rt.log.exists() else 0
    proc = None
    if host.systemd_manages_services():
        run(systemd_run_argv(state, name, accel))
        mode = f"systemd unit {unit_name(name)}.service"
    else:
        with open(rt.log, "a") as logf:
            proc = spawn(runner_argv(state, name, accel), stdout=logf, stderr=subprocess.STDOUT,
                         env={"PYTHONPATH": _pythonpath()}, new_session=True,
                         cwd=state.vm_dir(name))
        mode = "detached process"
    started = time.monotonic()
    deadline = started + READY_TIMEOUT
    while time.monotonic() < deadline:
        pid = qemu_pid(rt)
        if pid and rt.qmp.exists():
            try:
                with QMP.connect(rt.qmp, timeout=5) as q:
                    q.execute("query-status")
                return Started(pid, mode)
            except (OSError, ValueError, QMPError):
                pass
        if proc is not None:
            runner_gone = proc.poll() is not None
        else:  # a systemd unit: gone once systemd says so (a slow machine may take
            # seconds to start Python before the runner writes its pid file)
            runner_gone = (time.monotonic() - started > 5 and runner_pid(rt) is None
                           and unit_state(name) not in ("active", "activating", "reloading"))
        if runner_gone and qemu_pid(rt) is None:
            break
        time.sleep(0.1)
    tail = _log_tail(rt.log, log_start)
    if proc and proc.poll() is None:
        proc.kill()
    raise UserError(f"VM {name} did not start: {tail}",
                    hint=f"the full log is {rt.log}")


def _log_tail(path: Path, start: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            lines = [ln for ln in f.read().decode(errors="replace").splitlines()
                     if ln.strip() and "QEMU exited with status" not in ln]
    except OSError:
        return "no log"
    return " | ".join(lines[-3:]) or "no output"


def _wait_gone(rt: Runtime, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if qemu_pid(rt) is None:
            break
        time.sleep(0.1)
    else:
        return False
    # Then the runner: it removes sockets and stops virtiofsd.
    end = time.monotonic() + 10
    while runner_pid(rt) is not None and time.monotonic() < end:
        time.sleep(0.05)
    return True


def agent_answers(rt: Runtime, timeout: float = 2.0) -> bool:
    try:
        with GuestAgent.connect(rt.qga, timeout=timeout) as ga:
            return ga.sync()
    except OSError:
        return False


def stop(state: StateDir, name: str, *, force: bool = False, timeout: float = 60.0) -> str:
    """Stop a VM; return how it went, for the user. Its RBD disks' claims go with it
    (the runner drops them too, on its way out: whichever comes first)."""
    how = _stop(state, name, force=force, timeout=timeout)
    release_claims(state, name)
    return how


def release_claims(state: StateDir, name: str) -> None:
    try:
        defn = definition.load(state.definition(name))
    except (OSError, UserError):
        return
    if rbd_claims.rbd_disks(defn):
        for problem in rbd_claims.release_all(defn):
            log.warning("%s", problem)


def _stop(state: StateDir, name: str, *, force: bool, timeout: float) -> str:
    rt = state.runtime(name)
    pid = qemu_pid(rt)
    if pid is None:
        if runner_pid(rt) is None:
            raise UserError(f"VM {name} is not running", hint=f"start it: boot-vm {name}")
        _wait_gone(rt, 10)
        return "stopped"
    if not force:
        started = time.monotonic()
        if agent_answers(rt):
            with GuestAgent.connect(rt.qga) as ga:
                ga.shutdown()
            how = "guest agent shutdown"
        else:
            with QMP.connect(rt.qmp) as q:
                q.execute("system_powerdown")
            how = "ACPI power button"
        if _wait_gone(rt, timeout):
            return f"powered off by the guest ({how}, {time.monotonic() - started:.1f} s)"
        result = f"did not power off within {timeout:.0f} s after the {how}: killed"
    else:
        result = "forced off (QEMU quit, no guest shutdown)"
    try:
        with QMP.connect(rt.qmp, timeout=5) as q:
            q.execute("quit")
    except (OSError, ValueError, QMPError):
        pass
    if not _wait_gone(rt, 10):
        os.kill(pid, signal.SIGKILL)
        _wait_gone(rt, 10)
    return result


def stale_cleanup(rt: Runtime) -> None:
    """Leftovers of a runner that died (killed with -9, host crash)."""
    from hypercore.runner import clean
    clean(rt)
    rt.runner_pid.unlink(missing_ok=True)


def copy_ovmf_vars(target: Path, template: str) -> None:
    if not target.exists():
        if not Path(template).exists():
            raise UserError(f"UEFI firmware variables {template} are missing", hint="apt-get install ovmf")
        shutil.copyfile(template, target)


def command_error_line(e: CommandError) -> str:
    return (e.stderr.strip().splitlines() or [str(e)])[-1]
