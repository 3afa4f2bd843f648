"""Runs the bootstrap's steps, each once: a step with a marker in the
journal is skipped, the others run in order (each checks what is already
there, so a step cut short by a crash or reboot is simply run again). A
failing step stops the run with one clear line -- step, command, its error,
what to do -- and the unit fails: no retry loop, no reboot."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from hypercore.errors import UserError
from hypercore.run import CommandError

from . import report, steps_join, steps_netboot, steps_new, steps_osd, steps_repo, steps_time
from .context import Context

RETRY = "systemctl restart hypercore-firstboot"


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    run: Callable[[Context], None]


COMMON_START = [Step("facts", "choose host name, address and cluster id", steps_new.decide_facts)]
OSD_STEPS = [Step("osds", "create an OSD on each chosen disk", steps_osd.create_osds),
             Step("osds-up", "wait for the OSDs to be up and in", steps_osd.wait_osds_up)]
NETBOOT = Step("netboot", "serve network boot to clients (answers `netboot`)", steps_netboot.serve_netboot)
REPO = Step("repo", "golden-image replication: repo.yaml, this node's key, the peers' keys (answers `repo`)",
            steps_repo.setup_repo)
REPORT = Step("report", "write the ready report", report.write_report)
TIME = Step("time", "one time for the cluster: serve NTP; a joining node follows the monitors' clocks",
            steps_time.sync_time)

NEW = [*COMMON_START,
       TIME,
       Step("ceph-conf", "write /etc/ceph/ceph.conf", steps_new.write_conf),
       Step("keyrings", "make the cephx keys and keyrings", steps_new.make_keyrings),
       Step("mon-store", "make the monitor's map and store", steps_new.make_mon_store),
       Step("mon", "start the monitor and wait for its quorum", steps_new.start_mon),
       Step("cluster-config", "msgr2 and the cluster settings", steps_new.configure_new_cluster),
       Step("mgr", "start the manager", steps_new.start_mgr),
       *OSD_STEPS,
       Step("mgr-up", "wait for the manager to be active", steps_new.wait_mgr),
       Step("pool", "create the RBD pool vm-pool", steps_osd.make_pool),
       Step("health", "wait for HEALTH_OK", steps_osd.wait_healthy),
       NETBOOT,
       REPO,
       REPORT]

JOIN = [*COMMON_START,
        Step("join-conf", "the join token (from the answers, or asked for and approved), ceph.conf and the key",
             steps_join.write_join_conf),
        TIME,
        Step("join-cluster", "reach the monitors, fetch the admin and OSD bootstrap keys", steps_join.contact_cluster),
        Step("join-mon", "a monitor here while the cluster has fewer than three", steps_join.add_mon),
        Step("join-mgr", "a standby manager here", steps_join.add_mgr),
        *OSD_STEPS,
        Step("redundancy", "more copies now that the cluster has several hosts", steps_join.grow_redundancy),
        NETBOOT,
        REPO,
        REPORT]


def steps_for(mode: str) -> list[Step]:
    return {"new": NEW, "join": JOIN}[mode]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def failure_record(step: Step, index: int, total: int, err: Exception) -> dict:
    """What went wrong, for the console line and failure.json."""
    hint = getattr(err, "hint", None)
    if isinstance(err, CommandError):
        output = err.stderr or err.stdout
        what = f"`{shlex.join(err.argv)}` exited {err.returncode}"
        detail = _last_line(output)
        tail = "\n".join((output or "").strip().splitlines()[-20:])
        command = shlex.join(err.argv)
    else:
        what = str(getattr(err, "message", None) or err).splitlines()[0]
        detail, tail, command = "", "\n".join(str(err).splitlines()[1:]), None
    return {"step": step.id, "title": step.title, "index": index, "total": total, "what": what,
            "detail": detail, "command": command, "output_tail": tail, "hint": hint}


def failure_line(rec: dict) -> str:
    fix = f"{rec['hint']}; then" if rec.get("hint") else "fix the cause, then"
    detail = f": {rec['detail']}" if rec.get("detail") else ""
    return (f"hypercore-firstboot: FAILED at step {rec['index']}/{rec['total']} {rec['step']} "
            f"({rec['title']}): {rec['what']}{detail}. To go on: {fix} run `{RETRY}` "
            f"(finished steps are kept; `hypercore-install status` shows them).")


def run_steps(ctx: Context, steps: list[Step]) -> int:
    done = ctx.journal.complete()
    if done:
        ctx.say(f"hypercore-firstboot: the first-boot bootstrap finished on {done.get('finished')}; "
                "nothing to do (`hypercore-install status` shows the node).")
        return 0
    total = len(steps)
    clock = ctx.host.monotonic
    started = clock()
    for index, step in enumerate(steps, 1):
        mark = ctx.journal.done(step.id)
        if mark:
            ctx.say(f"[{index}/{total}] {step.title}: done on {mark.get('finished')}")
            continue
        ctx.say(f"[{index}/{total}] {step.title} ...")
        t = clock()
        try:
            step.run(ctx)
        except (CommandError, UserError, OSError) as err:
            rec = failure_record(step, index, total, err)
            ctx.journal.record_failure(rec)
            if rec["output_tail"]:
                ctx.say("\n".join("    | " + line for line in rec["output_tail"].splitlines()))
            ctx.say(failure_line(rec))
            return 1
        ctx.journal.mark_done(step.id, clock() - t)
        ctx.say(f"[{index}/{total}] {step.title}: done ({clock() - t:.0f} s)")
    ctx.journal.clear_failure()
    ctx.journal.mark_complete(clock() - started)
    ctx.say(f"hypercore-firstboot: finished in {clock() - started:.0f} s")
    return 0
