"""`hypercore repo serve-ssh`: the forced command of every peer key in
/etc/hypercore/repo/authorized_keys (access.py).

sshd runs it whatever the peer asked for, and puts the request in
SSH_ORIGINAL_COMMAND. It is split with shlex (never given to a shell) and
allowed only when it is one of the commands a peer's replicate, pull or
peers sends -- `hypercore repo [--repo-dir DIR] receive|_send|_inventory` --
with every option known, given once, and every value checked. The result is
a fresh argument list for the same command line parser; anything else is
refused with one line.

A key bound to a peer (`serve-ssh --peer NAME` in its authorized_keys line)
may only use the verbs of that peer's role in repo.yaml: an image server
replicates here and pulls, a cache only pulls (it never pushes). A peer that
repo.yaml no longer lists may do nothing.
"""

from __future__ import annotations

import re
import shlex

from hypercore.errors import UserError
from hypercore.repo import layout
from hypercore.repo.transport import COMPRESSORS

SHA256 = re.compile(r"^[0-9a-f]{64}$")
HINT = "this key may only replicate golden images (hypercore repo replicate/pull/peers from a peer)"


def _compress(value: str) -> str:
    if value not in COMPRESSORS:
        raise UserError(f"unknown compression {value!r}")
    return value


def _sha256(value: str) -> str:
    if not SHA256.fullmatch(value):
        raise UserError("--manifest-sha256 is not 64 hex digits")
    return value


# verb -> (option -> checker, required options, (least, most) positional names)
VERBS = {
    "receive": ({"--version": layout.version, "--parent": layout.version, "--compress": _compress,
                 "--manifest-sha256": _sha256}, {"--version", "--compress", "--manifest-sha256"}, (1, 1)),
    "_send": ({"--version": layout.version, "--parent": layout.version, "--compress": _compress},
              {"--version", "--compress"}, (1, 1)),
    "_inventory": ({}, set(), (0, 1)),
}


ALL_VERBS = frozenset(VERBS)
ROLE_VERBS = {"image-server": ALL_VERBS,                      # replicates here (receive) and pulls
              "cache": frozenset({"_send", "_inventory"})}    # only pulls


def peer_access(cfg, peer: str | None) -> tuple[frozenset[str], str]:
    """(the verbs a key may use, who it is for messages): every verb for a key bound
    to no peer (the answers' repo.authorized_keys), else those of the peer's role
    in repo.yaml (cfg)."""
    if peer is None:
        return ALL_VERBS, ""
    for p in cfg.peers:
        if p.name == peer:
            return ROLE_VERBS[p.role], f"peer {peer} ({p.role})"
    raise UserError(f"refused over ssh: this key belongs to peer {peer}, which {cfg.path} does not list",
                    hint=f"add {peer} to the peers there, or revoke the key: hypercore repo authorize --revoke KEY")


def refused(why: str) -> UserError:
    return UserError(f"refused over ssh: {why}", hint=HINT)


def _checked(check, value: str) -> str:
    try:
        return check(value)
    except UserError as e:
        raise refused(e.message) from None


def allowed_argv(command: str | None, repo_root: str, verbs: frozenset[str] = ALL_VERBS,
                 who: str = "") -> list[str]:
    """The `hypercore` arguments to run for SSH_ORIGINAL_COMMAND, or a UserError.
    repo_root: this node's repository; a --repo-dir must name it. verbs: those
    this key may use (peer_verbs); who: e.g. "peer node2 (cache)", for the refusal."""
    if not command:
        raise refused("no command given (this key has no shell)")
    try:
        words = shlex.split(command)
    except ValueError:
        raise refused("the command cannot be parsed") from None
    if words[:2] != ["hypercore", "repo"]:
        raise refused(f"`{words[0] if words else ''}` is not a repository command")
    rest = words[2:]
    if rest[:1] == ["--repo-dir"]:
        if len(rest) < 2 or rest[1].rstrip("/") != repo_root.rstrip("/"):
            raise refused(f"--repo-dir must be this node's repository {repo_root}")
        rest = rest[2:]
    if not rest or rest[0] not in VERBS:
        raise refused(f"`{rest[0] if rest else ''}` is not a replication command")
    verb, rest = rest[0], rest[1:]
    if verb not in verbs:
        raise UserError(f"refused over ssh: {who or 'this key'} may not {verb} here "
                        f"(it may: {', '.join(sorted(verbs))})",
                        hint="a cache only pulls from an image server; to replicate here, "
                             "make it an image server in this node's repo.yaml")
    checks, required, (least, most) = VERBS[verb]
    names: list[str] = []
    options: dict[str, str] = {}
    while rest:
        word = rest.pop(0)
        if word.startswith("-"):
            if word not in checks:
                raise refused(f"{verb} takes no option {word}")
            if word in options or not rest:
                raise refused(f"{word} is given twice or has no value")
            options[word] = _checked(checks[word], rest.pop(0))
        else:
            names.append(_checked(layout.image_name, word))
    if not least <= len(names) <= most:
        raise refused(f"{verb} takes {least}{'' if least == most else f' or {most}'} image name(s)")
    missing = sorted(required - set(options))
    if missing:
        raise refused(f"{verb} needs {', '.join(missing)}")
    return ["repo", "--repo-dir", repo_root, verb, *names, *[x for kv in sorted(options.items()) for x in kv]]
