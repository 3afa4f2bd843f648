"""KVM or TCG: use KVM only where it really works.

/dev/kvm can exist where KVM is unusable (a nested "PVM" host: kernels hang,
and -cpu host aborts with "failed to set MSR"). KVM counts as working when
/dev/kvm opens read-write, the CPU advertises vmx or svm, and a short QEMU
probe with -accel kvm -cpu host starts and quits cleanly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hypercore.run import CommandError, run

log = logging.getLogger("hypercore.accel")

PROBE_ARGV = [
    "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-machine", "q35",
    "-nodefaults", "-display", "none", "-m", "32", "-S", "-qmp", "stdio",
]
PROBE_INPUT = '{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n'


@dataclass(frozen=True)
class Accel:
    name: str    # kvm | tcg
    reason: str  # why, for `vm show`

    @property
    def cpu(self) -> str:
        return "host" if self.name == "kvm" else "max"


def cpu_has_virt(cpuinfo: str) -> bool:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            return "vmx" in flags or "svm" in flags
    return False


def _dev_kvm_usable() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def probe_kvm() -> tuple[bool, str]:
    if not _dev_kvm_usable():
        return False, "/dev/kvm is missing or not usable"
    if not cpu_has_virt(Path("/proc/cpuinfo").read_text()):
        return False, "the CPU shows no vmx/svm (nested or emulated virtualisation)"
    try:
        run(PROBE_ARGV, input=PROBE_INPUT, timeout=30)
    except CommandError as e:
        first = (e.stderr.strip().splitlines() or ["no output"])[0]
        return False, f"a KVM probe start failed: {first}"
    return True, "KVM probe start succeeded"


@cache
def detect(wanted: str = "auto") -> Accel:
    """wanted: auto | kvm | tcg (from the definition or $HYPERCORE_ACCEL)."""
    wanted = os.environ.get("HYPERCORE_ACCEL", wanted) if wanted == "auto" else wanted
    if wanted == "tcg":
        return Accel("tcg", "TCG requested")
    if wanted == "kvm":
        return Accel("kvm", "KVM requested")
    ok, why = probe_kvm()
    log.debug("kvm probe: %s (%s)", ok, why)
    return Accel("kvm", why) if ok else Accel("tcg", f"software emulation: {why}")
