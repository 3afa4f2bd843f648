"""`hypercore-install firstboot` and `hypercore-install status`."""

from __future__ import annotations

import fcntl
import json
import os

from hypercore.errors import UserError
from hypercore.run import require

from .. import answers as answers_mod
from . import engine, report
from .context import Context
from .host import Host
from .journal import Journal
from .paths import Paths

TOOLS = {"new": ("ip", "lsblk", "systemctl", "chronyc", "ceph", "monmaptool", "ceph-mon", "ceph-mgr",
                 "ceph-volume", "rbd"),
         "join": ("ip", "lsblk", "systemctl", "chronyc", "ceph", "ceph-mon", "ceph-mgr", "ceph-volume")}


def _record(paths: Paths) -> dict | None:
    try:
        with open(paths.install_record) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the install record {paths.install_record}: {e}",
                        hint="restore it from the installer's journal, or remove it to use the "
                             "answers' disk paths") from None


def make_context(paths: Paths, host=None, out=None) -> Context:
    if not os.path.exists(paths.answers):
        raise UserError(f"{paths.answers} does not exist: this node was not installed by hypercore-install",
                        hint="install it with hypercore-install, or write the file (see installer/examples/)")
    answers = answers_mod.load(paths.answers)
    journal = Journal(paths.state_dir)
    ctx = Context(host=host or Host(), paths=paths, answers=answers, record=_record(paths),
                  journal=journal, facts=journal.facts() or {})
    if out is not None:
        ctx.out = out
    return ctx


def preflight(paths: Paths) -> None:
    if os.path.exists(paths.live_marker):
        raise UserError(f"this is the live medium ({paths.live_marker} exists); the first-boot bootstrap "
                        "runs on the installed system",
                        hint="install with hypercore-install, then boot the installed disk")
    if os.geteuid() != 0:
        raise UserError("the first-boot bootstrap needs root", hint="run it as root")


def _lock(paths: Paths):
    os.makedirs(os.path.dirname(paths.lock), exist_ok=True)
    f = open(paths.lock, "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise UserError("the first-boot bootstrap is already running (hypercore-firstboot.service, or "
                        "another hypercore-install firstboot)",
                        hint="follow it with: journalctl -f -u hypercore-firstboot") from None
    return f


def firstboot(args) -> int:
    paths = Paths(getattr(args, "root", None) or "/")
    preflight(paths)
    with _lock(paths):
        ctx = make_context(paths)
        mode = ctx.facts.get("mode") or ctx.answers["ceph"]["mode"]
        if not ctx.journal.complete():
            for program in TOOLS[mode]:
                require(program)
        return engine.run_steps(ctx, engine.steps_for(mode))


def status_text(ctx: Context) -> str:
    """The report (asking the cluster now) and every step's state."""
    j = ctx.journal
    mode = ctx.facts.get("mode") or ctx.answers["ceph"]["mode"]
    steps = engine.steps_for(mode)
    lines = []
    if ctx.facts.get("ip"):
        lines.append(report.current_report(ctx))
    complete, failure = j.complete(), j.failure()
    if complete:
        lines.append(f"First-boot bootstrap ({mode}): complete since {complete.get('finished')}")
    elif failure:
        lines.append(f"First-boot bootstrap ({mode}): FAILED at step {failure.get('step')} "
                     f"on {failure.get('when')}")
    elif ctx.facts:
        lines.append(f"First-boot bootstrap ({mode}): not finished (running, or stopped by a reboot)")
    else:
        lines.append(f"First-boot bootstrap ({mode}): not started")
    asked = ctx.facts.get("join_request")
    if asked and not j.done("join-cluster"):
        lines.append(f"Join request {asked['code']} (key {asked['fingerprint']}) sent to {asked['url']}: "
                     f"on a node of the cluster run `hypercore cluster approve {asked['code']}`")
    for i, step in enumerate(steps, 1):
        mark = j.done(step.id)
        if mark:
            state = f"done {mark.get('finished')} ({mark.get('seconds')} s)"
        elif failure and failure.get("step") == step.id:
            state = "FAILED"
        else:
            state = "pending"
        lines.append(f"  {i:>2}. {step.id:<14} {state:<36} {step.title}")
    if failure and not complete:
        lines.append("")
        lines.append(engine.failure_line(failure))
    return "\n".join(lines) + "\n"


def status(args) -> int:
    ctx = make_context(Paths(getattr(args, "root", None) or "/"))
    print(status_text(ctx), end="")
    return 0
