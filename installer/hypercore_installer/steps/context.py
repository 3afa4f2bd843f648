"""What a step gets besides its params: the runner, the new identifiers
(generated once per install and kept in the journal) and the work directory."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from ..runner import Runner


def new_ids(plan: dict) -> dict:
    """Fresh random identifiers for one install: disk and partition GUIDs,
    filesystem UUIDs, machine-id."""
    source = plan["source"]
    ids = {"disk": str(uuid.uuid4()), "fs:root": str(uuid.uuid4()), "fs:esp": uuid.uuid4().hex[:8],
           "fs:data": str(uuid.uuid4()), "machine-id": uuid.uuid4().hex}
    for n in range(1, source["last_number"] + 2):
        ids[f"part:{n}"] = str(uuid.uuid4())
    return ids


@dataclass
class Context:
    runner: Runner
    ids: dict
    workdir: str

    def mountpoint(self, name: str) -> str:
        return os.path.join(self.workdir, "mnt", name)

    @contextlib.contextmanager
    def mounted(self, device: str, name: str, options: str | None = None) -> Iterator[str]:
        with self.runner.mounted(device, self.mountpoint(name), options) as path:
            yield path

    def reread_partitions(self, disk: str) -> None:
        """Make the kernel (and udev) see the disk's current partition table."""
        self.runner.run(["partx", "-u", disk])
        if self.runner.available("udevadm"):
            self.runner.run(["udevadm", "settle"])
