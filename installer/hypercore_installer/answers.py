"""Answer files: load the YAML, check it against the JSON schema and the rules
a schema cannot say, and report every problem at once with its path.

`load(path)` returns the answers dict or raises AnswersError (a UserError
carrying every Problem). `check(doc)` returns the list of Problems of an
already-parsed document (used by the interactive mode too).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from hypercore import schema as whole
from hypercore.errors import ProblemsError, UserError, plural

from . import crypthash
from .sizes import parse_size

ZONEINFO = Path("/usr/share/zoneinfo")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an answer file: where (dotted path), what, how to fix."""

    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.path or '(top level)'}: {self.message}"
        return text + (f"\n    hint: {self.hint}" if self.hint else "")


class AnswersError(ProblemsError):
    """The answer file is unreadable or invalid; carries every Problem."""

    def __init__(self, source: str, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{source}: {plural(len(problems), 'problem')} found; nothing was changed",
                         problems, hint="fix them and run `hypercore-install validate FILE` again")


@functools.cache
def schema() -> dict:
    """The committed JSON schema (answers.schema.json inside this package)."""
    text = resources.files(__package__).joinpath("answers.schema.json").read_text()
    return json.loads(text)


# --- YAML -----------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads 52:54:00:12:34:56 as a
    string (YAML 1.1 would make it a base-60 integer)."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:int"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.MarkedYAMLError(
                "while reading a mapping", node.start_mark,
                f"found duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> dict:
    """The YAML document as a dict; a syntax error names its line and column."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise UserError(f"{source}: YAML syntax error at {where}: {what}",
                        hint="fix the YAML at that line (indentation with spaces, `key: value`, "
                             "quotes around values with ':' or '#')") from None
    except yaml.YAMLError as e:
        raise UserError(f"{source}: not valid YAML: {e}", hint="check the file's syntax") from None
    if doc is None:
        raise UserError(f"{source}: the answer file is empty",
                        hint="start from an example in installer/examples/")
    if not isinstance(doc, dict):
        raise UserError(f"{source}: the answer file must be a mapping of keys (target:, hostname:, ...), "
                        f"not a {type(doc).__name__}",
                        hint="start from an example in installer/examples/")
    return doc


def load(path: str | os.PathLike, now: float | None = None) -> dict:
    """Read, parse and check an answer file (`now`: see check); AnswersError lists every problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"answer file {p} does not exist",
                        hint="give the path of a YAML answer file (examples in installer/examples/)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read answer file {p}: {e}", hint="check the path and its permissions") from None
    doc = parse_yaml(text, str(p))
    problems = check(doc, now)
    if problems:
        raise AnswersError(str(p), problems)
    return doc


# --- checks ---------------------------------------------------------------

def dotted(parts) -> str:
    """('ceph', 'osd_disks', 1) -> 'ceph.osd_disks[1]'."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _resolve_ref(sub: dict) -> dict:
    ref = sub.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        merged = dict(schema()["$defs"][ref.rsplit("/", 1)[1]])
        merged.update({k: v for k, v in sub.items() if k != "$ref"})
        return merged
    return sub


def _type_name(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", type(None): "empty"}.get(type(value), type(value).__name__)


def _leaf_errors(err: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For anyOf/oneOf failures, the errors of the branch that fits the value's type."""
    if err.validator not in ("anyOf", "oneOf") or not err.context:
        return [err]
    if err.schema.get("x-oneof-hint"):
        return [err]
    by_branch: dict[int, list] = {}
    for sub in err.context:
        by_branch.setdefault(sub.schema_path[0], []).append(sub)
    # Prefer a branch whose failures are not about the value's type.
    for branch in by_branch.values():
        if not any(s.validator == "type" and not s.relative_path for s in branch):
            return [leaf for s in branch for leaf in _leaf_errors(s)]
    return [err]


def _problem(err: jsonschema.ValidationError) -> Problem:
    path = dotted(err.absolute_path)
    sub = _resolve_ref(err.schema) if isinstance(err.schema, dict) else {}
    v, value = err.validator, err.instance
    secret = sub.get("x-secret")
    if v == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        key = extra[0] if extra else "?"
        near = difflib.get_close_matches(str(key), allowed, n=1)
        where = dotted([*err.absolute_path, key])
        hint = (f"did you mean `{near[0]}`? " if near else "") + f"allowed here: {', '.join(allowed)}"
        return Problem(where, f"unknown key '{key}'", hint)
    if v == "required":
        missing = re.search(r"'([^']+)' is a required property", err.message)
        key = missing.group(1) if missing else "?"
        prop = _resolve_ref(sub.get("properties", {}).get(key, {}))
        return Problem(dotted([*err.absolute_path, key]), "is required but missing",
                       prop.get("description"))
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        words = {"string": "a string", "boolean": "true or false", "array": "a list",
                 "object": "a mapping of keys", "integer": "a whole number"}
        hint = sub.get("description")
        if want == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
            hint = "put the value in quotes; " + (hint or "")
        return Problem(path, f"must be {words.get(want, want)}, not {_type_name(value)}", hint)
    if v in ("pattern", "format"):
        shown = "the value" if secret else repr(value)
        return Problem(path, f"{shown} {sub.get('x-invalid', 'has the wrong form')}",
                       sub.get("x-hint") or sub.get("description"))
    if v == "enum":
        choices = ", ".join(str(c) for c in err.validator_value)
        return Problem(path, f"{value!r} is not one of: {choices}", sub.get("description"))
    if v == "const":
        return Problem(path, f"must be {err.validator_value!r}", sub.get("description"))
    if v == "maxProperties" and sub.get("x-invalid"):
        return Problem(path, sub["x-invalid"], sub.get("x-hint") or sub.get("description"))
    if v in ("minItems", "minProperties", "minLength"):
        return Problem(path, "must not be empty", sub.get("description"))
    if v in ("oneOf", "anyOf"):
        if sub.get("x-oneof-hint"):
            return Problem(path, sub["x-oneof-hint"], sub.get("description"))
        return Problem(path, f"has the wrong form ({_type_name(value)})", sub.get("description"))
    return Problem(path, err.message, sub.get("description"))


def schema_problems(doc: dict) -> list[Problem]:
    validator = whole.validator(schema())
    out: list[Problem] = []
    for err in validator.iter_errors(doc):
        for leaf in _leaf_errors(err):
            if leaf.validator in ("pattern", "format", "enum", "const", "anyOf", "oneOf") \
                    and isinstance(leaf.instance, str) and CONTROL.search(leaf.instance):
                continue  # control_problems says what is wrong with it
            p = _problem(leaf)
            if p not in out:
                out.append(p)
    return out


# Every value of an answer file is one line of text: control characters (a
# newline, a tab, ...) would end up in files the installer writes (a network
# file, /etc/shadow through chpasswd, authorized_keys) and change their meaning.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
CONTROL_NAMES = {"\n": "a newline", "\t": "a tab", "\r": "a carriage return"}


def control_problems(node, where: tuple = ()) -> list[Problem]:
    """A Problem for each string anywhere in node that holds a control character."""
    if isinstance(node, dict):
        return [p for key, sub in node.items() for p in control_problems(sub, (*where, key))]
    if isinstance(node, list):
        return [p for i, sub in enumerate(node) for p in control_problems(sub, (*where, i))]
    m = CONTROL.search(node) if isinstance(node, str) else None
    if not m:
        return []
    char = m.group()
    name = CONTROL_NAMES.get(char, f"the control character U+{ord(char):04X}")
    at = "at its end" if m.start() == len(node) - 1 else f"at character {m.start() + 1}"
    return [Problem(dotted(where), f"contains {name} {at}; every value must be one line of printable text",
                    "write it on one line, in quotes; a YAML block scalar (`|` or `>`) ends in a newline "
                    "(`|-` and `>-` do not)")]


def _order(p: Problem):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"[.\[\]]+", p.path) if t]


def check(doc: dict, now: float | None = None) -> list[Problem]:
    """Every problem of a parsed answer document, schema first, then the rules
    a schema cannot say (only on parts whose shape is right). With `now` (at
    install time, not on the installed node later) a join token must not have
    expired."""
    problems = schema_problems(doc) + control_problems(doc)
    bad = {p.path for p in problems}

    def ok(path: str) -> bool:
        return not any(b == path or b.startswith(path + ".") or b.startswith(path + "[") for b in bad)

    for fn in (_check_root, _check_network, _check_ceph, _check_mon_hosts, _check_data, _check_timezone,
               _check_sizes, _check_duplicates, _check_netboot, _check_repo):
        problems += fn(doc, ok)
    problems += check_join_token(doc, ok, now)
    return sorted(problems, key=_order)


def secret_fields(doc: dict, schema_node: dict | None = None, path: tuple = ()) -> list[str]:
    """The dotted paths of the document's values that the schema marks secret
    (`x-secret`: keys, tokens, password hashes)."""
    node = _resolve_ref(schema() if schema_node is None else schema_node)
    out = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            sub = _resolve_ref(node.get("properties", {}).get(key, {}))
            if sub.get("x-secret"):
                out.append(dotted([*path, key]))
            else:
                out += secret_fields(value, sub, (*path, key))
    return out


def check_served(doc: dict) -> list[Problem]:
    """Answers that came over plain HTTP (the client network, where anyone
    may fetch them) must hold no secret."""
    return [Problem(p, "is a secret, and this answer file came over plain HTTP: anyone on that network "
                       "can fetch it, so it is refused",
                    "remove it from the served file: join with `ceph.join.request: http://CLUSTER-NODE:8067` "
                    "(an operator approves the node there) and log in with `root.ssh_keys`; secrets belong "
                    "on a HYPERCORE stick or in a systemd credential")
            for p in secret_fields(doc)]


def _check_root(doc, ok) -> list[Problem]:
    root = doc.get("root")
    if not isinstance(root, dict) or not ok("root"):
        return []
    if not root.get("ssh_keys") and not root.get("password_hash"):
        return [Problem("root", "gives no way to log in (no ssh_keys and no password_hash)",
                        "add `ssh_keys:` with your public key and/or `password_hash:` "
                        "(make one with `mkpasswd -m yescrypt`); a passwordless root is never installed")]
    out = public_key_problems("root.ssh_keys", root.get("ssh_keys"), ok)
    why = crypthash.problem(root["password_hash"]) if "password_hash" in root and ok("root.password_hash") else None
    if why:
        out.append(Problem("root.password_hash", f"the value {why}",
                           "paste the whole hash `mkpasswd -m yescrypt` or `openssl passwd -6` prints, "
                           "on one line in quotes: password_hash: '$y$...'"))
    return out


def public_key_problems(where: str, keys, ok) -> list[Problem]:
    """Each key of a list of OpenSSH public key lines that sshd could not use
    (damaged or cut off base64, a blob of another type): it would be written
    to an authorized_keys file and silently ignored."""
    from hypercore.repo import access
    out = []
    for i, key in enumerate(keys or []):
        if not ok(f"{where}[{i}]"):
            continue
        try:
            access.parse_public_key(key)
        except UserError as e:
            out.append(Problem(f"{where}[{i}]", e.message,
                               "paste the whole line of the public key file (ssh-ed25519 AAAA... comment), "
                               "e.g. your ~/.ssh/id_ed25519.pub"))
    return out


def _check_network(doc, ok) -> list[Problem]:
    net = doc.get("network")
    if not isinstance(net, dict) or not ok("network.mode"):
        return []
    out: list[Problem] = []
    if net.get("mode") == "dhcp":
        for key in ("address", "gateway", "dns"):
            if key in net:
                out.append(Problem(f"network.{key}", "is only used with `mode: static`",
                                   "remove it, or set `mode: static`"))
        return out
    if "interface" not in net:
        out.append(Problem("network.interface", "is required with `mode: static`",
                           "name the interface (enp3s0) or give its MAC; `hypercore-install probe` lists them"))
    iface = None
    if not ok("network.address") or not ok("network.gateway") or not ok("network.dns"):
        return out
    if "address" not in net:
        out.append(Problem("network.address", "is required with `mode: static`",
                           "write the address with its prefix length, e.g. 192.168.1.10/24"))
    else:
        _, _, prefix = net["address"].partition("/")
        try:
            # A prefix length, never a netmask (networkd's Address= takes no 255.255.255.0).
            if not re.fullmatch(r"0|[1-9][0-9]{0,2}", prefix):
                raise ValueError("no prefix length")
            iface = ipaddress.ip_interface(net["address"])
        except ValueError:
            out.append(Problem("network.address", f"{net['address']!r} is not an address with a prefix length",
                               "write it in CIDR form, e.g. 192.168.1.10/24 or 2001:db8::10/64"))
        else:
            out += _zone_problems("network.address", net["address"])
            if iface.ip == iface.network.network_address and iface.network.prefixlen < iface.max_prefixlen - 1:
                out.append(Problem("network.address", f"{net['address']} is the network address, not a host address",
                                   f"use a host address inside {iface.network}, e.g. {next(iface.network.hosts())}"
                                   f"/{iface.network.prefixlen}"))
    if "gateway" in net:
        try:
            gw = ipaddress.ip_address(net["gateway"])
        except ValueError:
            out.append(Problem("network.gateway", f"{net['gateway']!r} is not an IP address",
                               "write the router's address, e.g. 192.168.1.1"))
        else:
            out += _zone_problems("network.gateway", net["gateway"])
            if iface is not None and (gw.version != iface.version or gw not in iface.network):
                out.append(Problem("network.gateway", f"{gw} is not inside {iface.network} (network.address)",
                                   "the gateway must be reachable on the node's own subnet; check both addresses"))
    for i, server in enumerate(net.get("dns") or []):
        try:
            ipaddress.ip_address(server)
        except ValueError:
            out.append(Problem(f"network.dns[{i}]", f"{server!r} is not an IP address",
                               "DNS servers are given by address, e.g. 192.168.1.1 or 9.9.9.9"))
        else:
            out += _zone_problems(f"network.dns[{i}]", server)
    return out


def _zone_problems(where: str, text: str) -> list[Problem]:
    """An IPv6 address with a zone (fe80::1%eth0): Python's ipaddress takes
    anything after the %, but the network file names its interface itself."""
    if "%" not in text:
        return []
    return [Problem(where, f"{text!r} has a zone (%...), which the network file cannot take",
                    "leave out the %... part: the file configures one interface already")]


def _check_ceph(doc, ok) -> list[Problem]:
    ceph = doc.get("ceph")
    if not isinstance(ceph, dict) or not ok("ceph.mode"):
        return []
    if ceph.get("mode") == "new":
        return [Problem(f"ceph.{k}", "is only used with `mode: join`",
                        "remove it, or set `mode: join` to join an existing cluster")
                for k in ("mon_hosts", "key", "join") if k in ceph]
    if "join" in ceph:
        return []  # the token carries the monitors and the key (both at once: the schema's oneOf)
    token_hint = "better, use `join: {token: ...}` from `hypercore cluster token`"
    return [Problem(f"ceph.{k}", "is required with `mode: join` (or give `join.token` instead)", hint)
            for k, hint in (("mon_hosts", "list the existing cluster's monitor addresses, e.g. [192.168.1.10]; "
                             + token_hint),
                            ("key", "copy it from the existing cluster: ceph auth get-key client.admin; "
                             + token_hint))
            if k not in ceph]


def mon_problem(mon: str) -> str | None:
    """What is wrong with one monitor address as ceph.conf's mon_host and
    chrony's `server` take it (IP or host name, optional port), or None."""
    from .firstboot import monitors
    host = monitors.host_of(mon)
    if any(not 1 <= port <= 65535 for _, port in monitors.endpoints(mon)):
        return f"{mon!r} has a port outside 1-65535"
    if mon.startswith("[") or ":" in host:
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
        return f"{mon!r} has a zone (%...), which ceph.conf cannot take" if ip.scope_id else None
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is not an IPv4 address"
        return None
    host_name = re.compile(schema()["properties"]["hostname"]["pattern"])
    return None if host_name.fullmatch(host) else f"{host!r} is not a host name (RFC 1123)"


def _check_mon_hosts(doc, ok) -> list[Problem]:
    ceph = doc.get("ceph")
    mons = ceph.get("mon_hosts") if isinstance(ceph, dict) else None
    out = []
    for i, mon in enumerate(mons if isinstance(mons, list) else []):
        why = mon_problem(mon) if ok(f"ceph.mon_hosts[{i}]") else None
        if why:
            out.append(Problem(f"ceph.mon_hosts[{i}]", why,
                               "write e.g. 192.168.1.10, 192.168.1.10:6789, [2001:db8::10]:3300 or node1"))
    return out


def check_join_token(doc: dict, ok=lambda path: True, now: float | None = None) -> list[Problem]:
    """ceph.join.token: a token (never shown), for the cluster of ceph.fsid when
    both are given, and (with `now`, at install time) not expired."""
    from hypercore.cluster import token as tokmod
    ceph = doc.get("ceph")
    if not isinstance(ceph, dict) or not isinstance(ceph.get("join"), dict) or not ok("ceph.join.token"):
        return []
    if ceph.get("mode") != "join" or "token" not in ceph["join"]:
        return []
    try:
        tok = tokmod.decode(ceph["join"]["token"])
        why = next(filter(None, map(mon_problem, tok.mons)), None)
        if why:
            raise UserError(f"the join token names a monitor this node cannot use: {why}",
                            hint="make the token on a node of the cluster again: hypercore cluster token")
        if ok("ceph.fsid"):
            tokmod.check_fsid(tok, ceph.get("fsid"))
        if now is not None:
            tokmod.check_fresh(tok, now)
    except UserError as e:
        return [Problem("ceph.join.token", e.message, e.hint)]
    return []


def _check_data(doc, ok) -> list[Problem]:
    data = doc.get("data")
    if not isinstance(data, dict) or not ok("data"):
        return []
    if data.get("profile") == "raid1" and len(data.get("disks", [])) < 2:
        return [Problem("data.profile", "raid1 needs at least two data disks",
                        "add a second disk to data.disks, or use `profile: single`")]
    return []


def _check_netboot(doc, ok) -> list[Problem]:
    nb = doc.get("netboot")
    keys = ("enabled", "interface", "mode", "address", "range")
    if not isinstance(nb, dict) or not all(ok(f"netboot.{k}") for k in keys):
        return []
    from hypercore_netboot.settings import answer_problems
    return [Problem(path, message, hint) for path, message, hint in answer_problems(nb)]


def _check_repo(doc, ok) -> list[Problem]:
    """The repo.yaml the first boot will write, checked by the repository's own
    schema and rules (hypercore.repo.config): e.g. a peer name used twice."""
    section = doc.get("repo")
    if not isinstance(section, dict) or not ok("repo"):
        return []
    from hypercore.repo import access, config
    return [Problem(dotted(["repo", *where]), message,
                    "each peer needs its own name (it is what --to and --from take)" if "twice" in message
                    else "see the repo section in answers.schema.json")
            for where, message in config.problems(access.repo_config(section))] \
        + public_key_problems("repo.authorized_keys", section.get("authorized_keys"), ok)


def known_timezone(tz: str) -> bool:
    """Whether tz names a zone (always true where no tz database is installed)."""
    return tz == "UTC" or not ZONEINFO.is_dir() or (ZONEINFO / tz).is_file()


def _check_timezone(doc, ok) -> list[Problem]:
    tz = doc.get("timezone")
    if not isinstance(tz, str) or not ok("timezone") or not ZONEINFO.is_dir():
        return []
    if known_timezone(tz):
        return []
    names = [str(p.relative_to(ZONEINFO)) for p in ZONEINFO.glob("*/*")] + ["UTC"]
    near = difflib.get_close_matches(tz, names, n=1)
    return [Problem("timezone", f"unknown time zone {tz!r}",
                    (f"did you mean {near[0]}? " if near else "") + "list them with `timedatectl list-timezones`")]


def _check_sizes(doc, ok) -> list[Problem]:
    out = []
    for path, rng in _matches(doc):
        size = rng.get("size") if isinstance(rng, dict) else None
        if isinstance(size, dict) and ok(path) and "min" in size and "max" in size:
            if parse_size(size["min"]) > parse_size(size["max"]):
                out.append(Problem(f"{path}.size", f"min {size['min']} is larger than max {size['max']}",
                                   "swap them"))
    return out


def _check_duplicates(doc, ok) -> list[Problem]:
    out, seen = [], {}
    for where, ref in disk_refs(doc):
        path = ref.get("path") if isinstance(ref, dict) else None
        if not path or not ok(where):
            continue
        if path in seen:
            out.append(Problem(where, f"{path} is already named in {seen[path]}",
                               "a disk can only have one role: target, data or Ceph OSD"))
        else:
            seen[path] = where
    return out


# --- helpers used by the plan ---------------------------------------------

def disk_refs(doc: dict) -> list[tuple[str, dict]]:
    """Every disk reference with its path in the file, normalised to {path|match}."""
    refs: list[tuple[str, dict]] = []
    if isinstance(doc.get("target"), dict):
        refs.append(("target", doc["target"]))
    for section, key in (("data", "disks"), ("ceph", "osd_disks")):
        items = (doc.get(section) or {}).get(key) if isinstance(doc.get(section), dict) else None
        for i, item in enumerate(items or []):
            refs.append((f"{section}.{key}[{i}]", {"path": item} if isinstance(item, str) else item))
    return [(w, r) for w, r in refs if isinstance(r, dict)]


def _matches(doc):
    return [(f"{where}.match", ref["match"]) for where, ref in disk_refs(doc) if "match" in ref]
