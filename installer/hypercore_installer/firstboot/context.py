"""What every first-boot step gets: the host, the paths, the answers and the
install record, the journal, and the facts decided once (mode, host name,
address, fsid, OSD ids)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO, TypeVar

from hypercore.errors import UserError

from .cluster import Ceph
from .journal import Journal
from .paths import Paths

T = TypeVar("T")


class WaitTimeout(UserError):
    """Something the bootstrap waits for did not happen in time."""


@dataclass
class Context:
    host: object                  # host.Host, or a fake in the tests
    paths: Paths
    answers: dict
    record: dict | None           # /etc/hypercore/install.json
    journal: Journal
    facts: dict = field(default_factory=dict)
    out: TextIO = sys.stdout

    @property
    def ceph(self) -> Ceph:
        return Ceph(self.host, self.facts.get("ceph_name"))

    @property
    def name(self) -> str:
        """This node's monitor/manager id: the short host name."""
        return self.facts["host"]

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def save_facts(self) -> None:
        self.journal.save_facts(self.facts)

    def wait(self, what: str, probe: Callable[[], tuple[T | None, str]], *, timeout: float,
             interval: float, hint: str) -> T:
        """Call probe() -> (result, state) until result is truthy; every
        `interval` s, at most `timeout` s. Raises WaitTimeout with the last state."""
        deadline = self.host.monotonic() + timeout
        while True:
            result, state = probe()
            if result:
                return result
            if self.host.monotonic() >= deadline:
                raise WaitTimeout(f"{what}: not reached within {timeout:.0f} s (last seen: {state})", hint=hint)
            self.host.sleep(interval)
