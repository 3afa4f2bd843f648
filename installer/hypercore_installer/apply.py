"""Apply a plan: run its steps in order through one runner, recording each
finished step in the journal so a re-run after a crash resumes.

`prepare()` decides between a fresh plan and resuming a journal;
`execute()` runs the steps.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from hypercore.errors import UserError
from hypercore.run import CommandError

from .journal import Journal, MemoryJournal, digest
from .model import Plan, describe_disk
from .plan import build_plan
from .runner import Runner
from .selectors import find_by_path
from .steps import ACTIONS, Context
from .steps.context import new_ids

# Test hook: SIGKILL this process right after the named step is journaled,
# to prove that a re-run resumes (tests/installer/test_apply_loop.py).
CRASH_ENV = "HYPERCORE_INSTALL_CRASH_AFTER"


class StepFailed(UserError):
    def __init__(self, number: int, total: int, step, err: CommandError | OSError, journal: Path | None):
        detail = str(err) if isinstance(err, CommandError) else os_error_text(err)
        resume = (f"fix the cause and run the same command again: it resumes at step {number} "
                  f"(journal {journal})") if journal else "fix the cause and run it again"
        super().__init__(f"step {number}/{total} ({step.id}) failed; steps after it were not run\n  {detail}",
                         hint=resume)


def os_error_text(err: OSError) -> str:
    """'No space left on device: /mnt/x' -- what the system said, and where."""
    where = ": " + " -> ".join(str(f) for f in (err.filename, err.filename2) if f) if err.filename else ""
    return f"{err.strerror or err}{where}"


@dataclass
class Prepared:
    plan: Plan
    journal: Journal | None     # existing journal when resuming
    resuming: bool


def stale_mounts(workdir: str, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points under workdir (left by a killed run), deepest first."""
    base = os.path.join(os.path.realpath(workdir), "mnt")
    found = []
    try:
        with open(mountinfo, encoding="utf-8") as f:
            for line in f:
                point = line.split()[4].encode().decode("unicode_escape")
                if point == base or point.startswith(base + "/"):
                    found.append(point)
    except OSError:
        return []
    return sorted(set(found), key=lambda p: -p.count("/"))


def release_stale_mounts(runner: Runner, workdir: str) -> None:
    for point in stale_mounts(workdir):
        runner.say(f"unmounting {point} (left by an interrupted run)")
        runner.run(["umount", point])


def _check_same_disks(plan: Plan, machine: dict, journal_path: Path) -> None:
    """On resume: every disk the plan writes must still be the same, idle disk."""
    for role, disks in plan.disks.items():
        for old in disks:
            now = find_by_path(machine, old["path"])
            same = now is not None and all(now.get(k) == old.get(k) for k in ("serial", "wwn", "model", "size"))
            if not same:
                raise UserError(
                    f"{old['path']} is not the {role} disk the interrupted install used "
                    f"({describe_disk(old)}; now {describe_disk(now) if now else 'missing'})",
                    hint=f"reconnect that disk, or start over: rm {journal_path}")
            busy = [f"{m['device']} at {m['mountpoint']}" for m in now.get("mounts", [])]
            busy += [f"{h['device']} held by {h['holder']}" for h in now.get("holders", [])]
            if busy:
                raise UserError(f"{old['path']} ({role}) is in use: {', '.join(busy)}",
                                hint="unmount or stop what uses it, then run the same command again")


def prepare(answers: dict, machine: dict, source_path: str | None, journal_path: Path | None) -> Prepared:
    """Resume the journal at journal_path when it belongs to these answers,
    else build a fresh plan (PlanRefused lists every problem)."""
    existing = Journal.load(journal_path) if journal_path else None
    if existing:
        if existing.state["answers_digest"] != digest(answers):
            raise UserError(f"an unfinished install with other answers is recorded in {journal_path}",
                            hint=f"run it again with its own answer file to finish it, or start over: "
                                 f"rm {journal_path}")
        plan = Plan.from_dict(existing.state["plan"])
        _check_same_disks(plan, machine, journal_path)
        return Prepared(plan, existing, True)
    return Prepared(build_plan(answers, machine, source_path), None, False)


def open_journal(prepared: Prepared, answers: dict, journal_path: Path | None) -> Journal:
    """The existing journal, a new one in a file, or (no path: dry run) in memory."""
    if prepared.journal:
        return prepared.journal
    plan = prepared.plan.to_dict()
    ids = new_ids(plan)
    if journal_path is None:
        return MemoryJournal(answers, plan, ids)
    return Journal.create(journal_path, answers, plan, ids)


def execute(plan: Plan, runner: Runner, journal: Journal, workdir: str) -> None:
    """Run every step not yet in the journal, in order."""
    ctx = Context(runner, journal.state["ids"], workdir)
    done = set(journal.done)
    total = len(plan.steps)
    journal_path = None if isinstance(journal, MemoryJournal) else journal.path
    for n, step in enumerate(plan.steps, 1):
        label = f"[{n}/{total}] {step.title}"
        if step.id in done:
            runner.say(f"{label}: done before, skipped")
            continue
        runner.say(label)
        t0 = time.monotonic()
        try:
            ACTIONS[step.action](ctx, step.params)
        except (CommandError, OSError) as e:     # a full disk, an I/O error: one line, not a traceback
            raise StepFailed(n, total, step, e, journal_path) from None
        journal.mark_done(step.id)
        if not runner.dry_run:
            runner.say(f"    done in {time.monotonic() - t0:.1f} s")
        if os.environ.get(CRASH_ENV) == step.id:
            os.kill(os.getpid(), signal.SIGKILL)
    journal.finish()
