"""Hold filesystems frozen (fsfreeze) for as long as the process that started
this one keeps its stdin open:

    python3 -m hypercore_installer.freezeguard MOUNTPOINT...

It freezes each mount point, prints "frozen", then waits for end-of-file on
stdin and unfreezes them. The installer closes that pipe when its copy is
done; if the installer dies instead (SIGKILL, OOM), the kernel closes the
pipe for it, so a crash never leaves the live system's root frozen. Runs
nothing from the frozen filesystems once they are frozen but fsfreeze
itself (reading is allowed; writing would wait).
"""

from __future__ import annotations

import sys

from hypercore.run import run


def _unfreeze(points: list[str]) -> None:
    for point in reversed(points):
        run(["fsfreeze", "--unfreeze", point], check=False)


def main(argv: list[str]) -> int:
    done: list[str] = []
    for point in argv:
        proc = run(["fsfreeze", "--freeze", point], check=False)
        if proc.returncode != 0:
            _unfreeze(done)
            print(f"cannot freeze {point}: {(proc.stderr or '').strip()}", file=sys.stderr, flush=True)
            return 1
        done.append(point)
    print("frozen", flush=True)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        _unfreeze(done)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
