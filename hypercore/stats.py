"""Resource statistics of a running VM, read over QMP (and /proc for CPU time).

query-cpus-fast gives each vCPU's host thread; its CPU time comes from
/proc/PID/task/TID/stat, sampled twice for a usage figure. query-balloon and
query-memory-size-summary give memory; query-blockstats the disk I/O.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypercore.qmp import QMP, QMPError

CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int, tid: int, proc: Path = Path("/proc")) -> float:
    stat = (proc / str(pid) / "task" / str(tid) / "stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_bytes(pid: int, proc: Path = Path("/proc")) -> int:
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _disk_stats(blockstats: list[dict]) -> list[dict]:
    """The VM's disks and CD-ROM (devices hypercore named); firmware flash is left out."""
    out = []
    for entry in blockstats:
        qdev = entry.get("qdev", "")
        if qdev.startswith("/machine/peripheral/"):
            name = qdev.split("/")[3].removesuffix("-dev")
        elif entry.get("device"):
            name = entry["device"]
        else:
            continue
        s = entry.get("stats", {})
        out.append({"disk": name, "rd_bytes": s.get("rd_bytes", 0), "wr_bytes": s.get("wr_bytes", 0),
                    "rd_ops": s.get("rd_operations", 0), "wr_ops": s.get("wr_operations", 0)})
    return out


def collect(qmp: QMP, pid: int, interval: float = 1.0, proc: Path = Path("/proc")) -> dict:
    status = qmp.execute("query-status")
    cpus = qmp.execute("query-cpus-fast")
    threads = [(c["cpu-index"], c["thread-id"]) for c in cpus]

    def sample() -> dict[int, float]:
        got = {}
        for index, tid in threads:
            try:
                got[index] = thread_cpu_seconds(pid, tid, proc)
            except OSError:
                got[index] = 0.0
        return got

    first = sample()
    time.sleep(interval)
    second = sample()
    vcpus = [{"cpu": i, "thread": tid, "seconds": round(second[i], 2),
              "percent": round(100 * (second[i] - first[i]) / interval, 1)} for i, tid in threads]
    memory = {"rss_bytes": rss_bytes(pid, proc)}
    try:
        memory["base_bytes"] = qmp.execute("query-memory-size-summary")["base-memory"]
    except QMPError:
        pass
    try:
        memory["balloon_bytes"] = qmp.execute("query-balloon")["actual"]
    except QMPError:
        pass  # no balloon device, or the guest has no balloon driver
    kvm = qmp.execute("query-kvm")
    return {"status": status["status"], "accel": "kvm" if kvm.get("enabled") else "tcg",
            "vcpus": vcpus, "memory": memory,
            "disks": _disk_stats(qmp.execute("query-blockstats"))}


def render(name: str, s: dict) -> str:
    mib = 1024 * 1024
    total = sum(v["percent"] for v in s["vcpus"])
    lines = [f"VM {name}: {s['status']}, {s['accel'].upper()}",
             f"cpu: {total:.1f}% over {len(s['vcpus'])} vCPU(s) "
             + " ".join(f"[cpu{v['cpu']} {v['percent']:.1f}% {v['seconds']:.1f}s]" for v in s["vcpus"])]
    m = s["memory"]
    mem = f"memory: {m.get('base_bytes', 0) // mib} MiB assigned, {m['rss_bytes'] // mib} MiB resident on host"
    if "balloon_bytes" in m:
        mem += f", balloon {m['balloon_bytes'] // mib} MiB"
    lines.append(mem)
    for d in s["disks"]:
        lines.append(f"{d['disk']}: read {d['rd_bytes'] / mib:.1f} MiB ({d['rd_ops']} ops), "
                     f"written {d['wr_bytes'] / mib:.1f} MiB ({d['wr_ops']} ops)")
    return "\n".join(lines)
