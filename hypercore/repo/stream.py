"""The two ends of a transfer as process pipelines.

    sender:   btrfs send [-p PARENT] SUBVOL | zstd|lz4 -c    -> stream
    receiver: stream -> zstd|lz4 -d -c | btrfs receive STAGING

The stream passes through pump() on both machines, which counts the bytes on
the wire (and can limit the rate). Every process's exit status is checked.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from hypercore.repo import btrfs
from hypercore.repo.transport import compress_argv, decompress_argv
from hypercore.run import spawn

CHUNK = 256 * 1024


def pump(src: BinaryIO, dst: BinaryIO, bwlimit: int | None = None) -> int:
    """Copy src to dst until EOF; bwlimit in bytes per second. Returns the bytes copied."""
    n = 0
    start = time.monotonic()
    read = getattr(src, "read1", src.read)
    while chunk := read(CHUNK):
        dst.write(chunk)
        n += len(chunk)
        if bwlimit:
            ahead = n / bwlimit - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    dst.flush()
    return n


@dataclass
class Pipeline:
    """Processes started for one end of a transfer, each with a file for its stderr."""
    procs: list[tuple[str, subprocess.Popen, BinaryIO]] = field(default_factory=list)

    def start(self, label: str, argv: list[str], **kw) -> subprocess.Popen:
        err = tempfile.TemporaryFile()
        p = spawn(argv, stderr=err, **kw)
        self.procs.append((label, p, err))
        return p

    def wait(self) -> list[str]:
        """Wait for all; one line per process that failed (empty: all succeeded)."""
        failed = []
        for label, p, err in self.procs:
            rc = p.wait()
            err.seek(0)
            tail = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
            err.close()
            if rc != 0:
                failed.append(f"{label} exit {rc}" + (f": {tail[-1].strip()}" if tail else ""))
        return failed

    def kill(self) -> None:
        for _, p, _ in self.procs:
            if p.poll() is None:
                p.kill()


def open_send(subvol: Path, parent: Path | None, compress: str, stdout=subprocess.PIPE
              ) -> tuple[Pipeline, BinaryIO | None]:
    """Start btrfs send (| compressor); return the pipeline and its output (None when stdout was given)."""
    pl = Pipeline()
    comp = compress_argv(compress)
    send = pl.start("btrfs send", btrfs.send_argv(subvol, parent), stdout=subprocess.PIPE if comp else stdout)
    if comp:
        c = pl.start(compress, comp, stdin=send.stdout, stdout=stdout)
        send.stdout.close()  # the compressor owns it now; a dead compressor stops send
        return pl, c.stdout
    return pl, send.stdout


def open_receive(staging: Path, compress: str) -> tuple[Pipeline, BinaryIO]:
    """Start (decompressor |) btrfs receive into staging; return the pipeline and its input."""
    pl = Pipeline()
    dec = decompress_argv(compress)
    if dec:
        d = pl.start(f"{compress} -d", dec, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        pl.start("btrfs receive", btrfs.receive_argv(staging), stdin=d.stdout, stdout=subprocess.DEVNULL)
        d.stdout.close()
        return pl, d.stdin
    r = pl.start("btrfs receive", btrfs.receive_argv(staging), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    return pl, r.stdin
