"""Run-once state of the first-boot bootstrap, in /var/lib/hypercore/firstboot/
(0700; files 0600):

  facts.json        what was decided once: mode, host name, address, fsid, OSDs
  STEP.done         one marker per finished step: when, how long
  failure.json      the last failure (step, command, stderr tail, hint)
  complete          every step is done; later runs do nothing

On the installed system /var/lib is the BTRFS data filesystem, so this state
lives next to the monitor store it describes. Every write is atomic.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from hypercore.files import write_atomic


class Journal:
    def __init__(self, directory: str):
        self.dir = directory

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _write(self, name: str, data: dict) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        write_atomic(self._path(name), json.dumps(data, indent=1, sort_keys=True) + "\n", 0o600)

    def _read(self, name: str) -> dict | None:
        try:
            with open(self._path(name)) as f:
                data = json.load(f)
        except (FileNotFoundError, ValueError):
            # A marker torn by a crash counts as not written: its step runs again.
            return None
        return data if isinstance(data, dict) else None

    # facts
    def facts(self) -> dict | None:
        return self._read("facts.json")

    def save_facts(self, facts: dict) -> None:
        self._write("facts.json", facts)

    # steps
    def done(self, step: str) -> dict | None:
        return self._read(f"{step}.done")

    def mark_done(self, step: str, seconds: float) -> None:
        self._write(f"{step}.done", {"step": step, "finished": _now(), "seconds": round(seconds, 1)})

    # failure
    def failure(self) -> dict | None:
        return self._read("failure.json")

    def record_failure(self, record: dict) -> None:
        self._write("failure.json", {**record, "when": _now()})

    def clear_failure(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path("failure.json"))

    # the whole run
    def complete(self) -> dict | None:
        return self._read("complete")

    def mark_complete(self, seconds: float) -> None:
        self._write("complete", {"finished": _now(), "seconds": round(seconds, 1)})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
