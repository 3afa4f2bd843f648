"""The golden-image repository's replication access, as the answers' `repo`
section asks (hypercore/repo/access.py has the files' text):

- /etc/hypercore/repo.yaml: role and peers, checked by the repository's own
  schema (hypercore.repo.config) before anything is written;
- this node's replication key, ed25519, /etc/hypercore/repo/id_ed25519 (0600,
  made once, kept on a rerun), the identity_file of every peer;
- the peers' keys in /etc/hypercore/repo/authorized_keys, each forced to
  `hypercore repo serve-ssh` (only receive, _send and _inventory, checked;
  a peer's own `key` only the verbs of its role: a cache only pulls),
  and the sshd drop-in that makes sshd read that file; sshd is reloaded.

The public key goes into the facts for the ready report. Without a `repo`
section nothing is written."""

from __future__ import annotations

import os

from hypercore.repo import access, config

from .context import Context


def setup_repo(ctx: Context) -> None:
    section = ctx.answers.get("repo")
    if section is None:
        ctx.say("    golden-image replication is not set up (no repo section in /etc/hypercore/answers.yaml)")
        return
    p, host = ctx.paths, ctx.host
    cfg = access.repo_config(section, identity_file=p.repo_key, known_hosts=p.repo_known_hosts)
    config.validate(cfg, p.repo_config)
    host.makedirs(os.path.dirname(p.repo_key), 0o700)
    if not host.exists(p.repo_key):
        host.remove(p.repo_key + ".pub")
        host.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"hypercore-repo@{ctx.name}",
                  "-f", p.repo_key])
    # Derived from the private key, so the two always match (even after a crash between them).
    public = host.run(["ssh-keygen", "-y", "-f", p.repo_key]).stdout.strip()
    host.write_file(p.repo_key + ".pub", public + "\n", 0o644)
    host.write_file(p.repo_known_hosts, host.read_text(p.repo_known_hosts) or "", 0o644)
    host.write_file(p.repo_config, access.repo_yaml(cfg), 0o644)
    keys = access.authorized_entries(section)
    host.write_file(p.repo_authorized_keys, access.authorized_keys(keys), 0o600)
    host.makedirs(os.path.dirname(p.sshd_dropin), 0o755)
    host.write_file(p.sshd_dropin, access.sshd_dropin(p.repo_authorized_keys), 0o644)
    host.run(["systemctl", "try-reload-or-restart", "ssh.service"], ok=range(0, 256))
    ctx.facts["repo_key"] = public
    ctx.save_facts()
    ctx.say(f"    role {cfg['role']}, {len(cfg['peers'])} peer(s), {len(keys)} authorized peer key(s)")
    ctx.say(f"    this node's replication key: {public}")
