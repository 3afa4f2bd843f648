"""Benchmark of golden-image replication: `/usr/bin/python3 -m tests.repo.bench_repo`.

Two nodes as in the integration tests (BTRFS on loop devices, network
namespaces, sshd). A sparse 256 MiB raw image with 96 MiB of partly compressible
data is v1; v2 changes 4 MiB in 8 places. For zstd, lz4 and no compression it
measures the bytes on the wire and the wall time of `hypercore repo replicate`
for v1 (full) and v2 (incremental), and of rsync over the same ssh for the
same two files (rsync's delta algorithm; its --compress-choice for zstd/lz4).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
from pathlib import Path

from tests.repo.nodes import PORT, Pair

MiB = 1 << 20
SIZE = 256 * MiB
HALF = bytes(0x40 | (b & 0x0F) for b in range(256))  # random bytes -> 4 bits of entropy each


def fill(path: Path, seed: int, regions: list[tuple[int, int]]) -> None:
    """At each (offset, length): random bytes, then bytes with 4 random bits each (only an entropy coder like zstd's shrinks those)."""
    rnd = random.Random(seed)
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.truncate(SIZE)
        for off, length in regions:
            f.seek(off)
            for _ in range(length // (64 * 1024)):
                f.write(rnd.randbytes(32 * 1024) + rnd.randbytes(32 * 1024).translate(HALF))


def replicate(pair: Pair, ref: str, compress: str) -> tuple[int, float]:
    out = pair.a.hc("replicate", ref, "--to", "node-b", "--compress", compress, "--json", timeout=600).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(rows) == 1, out
    return rows[0]["bytes"], rows[0]["seconds"]


def rsync(pair: Pair, src: Path, dst: Path, compress: str) -> tuple[int, float]:
    peer = pair.peer_entry(pair.b)
    ssh = " ".join(["ssh", "-p", str(PORT), "-i", peer["identity_file"], "-o", "BatchMode=yes",
                    *[x for o in peer["ssh_options"] for x in ("-o", o)]])
    comp = [] if compress == "none" else ["-z", f"--compress-choice={compress}"]
    argv = ["ip", "netns", "exec", pair.a.ns, "rsync", "-a", "--ignore-times", "--sparse", "--stats", *comp, "-e", ssh,
            str(src), f"{peer['address']}:{dst}"]
    start = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, check=True)
    secs = time.monotonic() - start
    sent = int(re.search(r"Total bytes sent: ([\d,.]+)", p.stdout).group(1).replace(",", ""))
    return sent, secs


def main() -> None:
    pair = Pair(fs_size=4 << 30)
    rows = []
    try:
        img = pair.top / "disk.raw"
        fill(img, 1, [(i * 16 * MiB, 6 * MiB) for i in range(16)])        # 96 MiB of data in 256 MiB
        v1 = pair.top / "v1.raw"
        subprocess.run(["cp", "--sparse=always", str(img), str(v1)], check=True)
        fill(img, 2, [(i * 32 * MiB + 3 * MiB, 512 * 1024) for i in range(8)])  # v2: 4 MiB changed
        names = {c: f"bench-{c}" for c in ("zstd", "lz4", "none")}
        for name in names.values():
            pair.a.hc("add", name, str(v1))
            pair.a.hc("add", name, str(img))
        rdir = pair.b.mnt / "rsync"
        rdir.mkdir()
        for comp, name in names.items():
            full = replicate(pair, f"{name}@v1", comp)
            inc = replicate(pair, f"{name}@v2", comp)
            target = rdir / f"{comp}.raw"
            rfull = rsync(pair, v1, target, comp)
            rinc = rsync(pair, img, target, comp)
            rows.append((comp, full, inc, rfull, rinc))
    finally:
        pair.close()

    print("256 MiB sparse raw image, 96 MiB of data; v2 changes 4 MiB (8 x 512 KiB)\n")
    print("| compression | btrfs send full | btrfs send -p (v1 -> v2) | rsync full | rsync of the change |")
    print("|---|---|---|---|---|")
    for comp, *cells in rows:
        print(f"| {comp} | " + " | ".join(f"{n / MiB:.1f} MiB, {s:.1f} s" for n, s in cells) + " |")


if __name__ == "__main__":
    main()
