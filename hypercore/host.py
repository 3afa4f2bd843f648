"""Facts about the host that decide what a VM may ask for and how it runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hypercore.errors import UserError


@dataclass(frozen=True)
class HostLimits:
    memory_mb: int
    cpus: int


def limits() -> HostLimits:
    total_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            total_kb = int(line.split()[1])
    return HostLimits(memory_mb=total_kb // 1024, cpus=os.cpu_count() or 1)


def check_resources(memory_mb: int, cpus: int, host: HostLimits) -> None:
    if memory_mb < 16:
        raise UserError(f"{memory_mb} MiB of RAM is too little for a VM", hint="give it at least 16 MiB")
    if memory_mb > host.memory_mb:
        raise UserError(f"{memory_mb} MiB of RAM is more than this host has ({host.memory_mb} MiB)",
                        hint=f"ask for at most {host.memory_mb} MiB")
    if cpus < 1:
        raise UserError(f"{cpus} CPUs is not a valid CPU count", hint="give it at least 1 CPU")
    if cpus > host.cpus:
        raise UserError(f"{cpus} CPUs is more than this host has ({host.cpus})",
                        hint=f"ask for at most {host.cpus} CPUs")


def systemd_manages_services() -> bool:
    """True when PID 1 is systemd and we are root: VMs then run as transient units."""
    if os.environ.get("HYPERCORE_SUPERVISOR") == "process":
        return False
    return os.geteuid() == 0 and Path("/run/systemd/system").is_dir()
