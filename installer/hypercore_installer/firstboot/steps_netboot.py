"""Network boot for client machines, as the answer file's `netboot` section
asks: the client files into the HTTP/TFTP roots on the BTRFS layout, then the
dnsmasq configuration applied and the services started (hypercore_netboot).
Runs after Ceph is up, so the address Ceph chose is never the client-side one."""

from __future__ import annotations

from pathlib import Path

from .context import Context


def serve_netboot(ctx: Context) -> None:
    nb = ctx.answers.get("netboot") or {}
    if not nb.get("enabled"):
        ctx.say("    network boot is not enabled (netboot.enabled in /etc/hypercore/answers.yaml)")
        return
    from hypercore_netboot import apply, artifacts

    paths = apply.Paths.from_env()
    for line in artifacts.stage(Path(paths.http_root), Path(paths.tftp_root)):
        ctx.say(f"    {line}")
    apply.apply(nb, paths, log=ctx.out)
