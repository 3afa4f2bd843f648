"""Answer files: the schema, every example, and bad files with their exact error paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.installer.conftest import BASE_ANSWERS, EXAMPLES, write_answers
from hypercore_installer import answers

BAD = sorted((Path(__file__).parent / "answers").glob("bad-*.yaml"))
EXAMPLE_FILES = sorted(EXAMPLES.glob("*-answers.yaml"))


def test_the_three_examples_exist():
    assert {p.name for p in EXAMPLE_FILES} == {
        "single-node-answers.yaml", "join-cluster-answers.yaml", "unattended-netboot-answers.yaml"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_is_valid(path, cli):
    assert answers.check(yaml.safe_load(path.read_text())) == []
    code, out, err = cli("validate", path)
    assert (code, out, err) == (0, "valid\n", "")


def _walk(node, where="$"):
    if isinstance(node, dict):
        for key, sub in (node.get("properties") or {}).items():
            yield f"{where}.{key}", sub
            yield from _walk(sub, f"{where}.{key}")
        for key in ("items", "$defs"):
            if isinstance(node.get(key), dict):
                subs = node[key].items() if key == "$defs" else [("[]", node[key])]
                for name, sub in subs:
                    yield from _walk(sub, f"{where}.{name}")
        for key in ("anyOf", "oneOf"):
            for i, sub in enumerate(node.get(key) or []):
                yield from _walk(sub, f"{where}.{key}[{i}]")


def test_schema_describes_every_property_and_forbids_unknown_keys():
    schema = answers.schema()
    defs = schema["$defs"]
    props = list(_walk(schema))
    assert len(props) > 30
    for where, sub in props:
        target = defs[sub["$ref"].rsplit("/", 1)[1]] if "$ref" in sub else sub
        assert sub.get("description") or target.get("description"), f"{where} has no description"
    objects = [schema, *(s for _, s in props if s.get("type") == "object"),
               *(d for d in defs.values() if d.get("type") == "object")]
    for obj in objects:
        assert obj.get("additionalProperties") is False, obj.get("description")


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_answer_file_names_its_problem(path, cli):
    text = path.read_text()
    expected = re.findall(r"^# expect: (.*)$", text, re.M)
    never = re.findall(r"^# never: (.*)$", text, re.M)
    assert expected, "a bad file states what it expects"
    code, out, err = cli("validate", path)
    assert code == 1 and out == ""
    assert "Traceback" not in err
    assert err.startswith(f"hypercore-install: {path}"), err
    for e in expected:
        assert e in err, f"expected {e!r} in:\n{err}"
    for secret in never:
        assert secret not in err
    # Every problem line comes with a hint.
    problems = [line for line in err.splitlines() if re.match(r"^  \S", line) and not line.startswith("  hint")]
    hints = [line for line in err.splitlines() if line.startswith("    hint: ")]
    assert len(hints) == len(problems), err


def test_all_problems_are_reported_at_once():
    doc = yaml.safe_load(BASE_ANSWERS)
    doc["hostname"] = "bad_name"
    doc["ceph"]["osd_disks"] = ["/dev/sda", "sdb", {"match": {}}]
    doc["network"] = {"mode": "dhcp", "address": "10.0.0.1/24"}
    paths = [p.path for p in answers.check(doc)]
    assert paths == ["ceph.osd_disks[1]", "ceph.osd_disks[2].match", "hostname", "network.address"]


def test_an_unquoted_mac_address_stays_a_string(tmp_path):
    p = write_answers(tmp_path, BASE_ANSWERS + "network: {mode: dhcp, interface: 52:54:00:12:34:56}\n")
    assert answers.load(p)["network"]["interface"] == "52:54:00:12:34:56"


def test_plain_integers_still_parse(tmp_path):
    p = write_answers(tmp_path, BASE_ANSWERS + "version: 1\n")
    assert answers.load(p)["version"] == 1


def test_missing_and_empty_files(tmp_path, cli):
    code, _, err = cli("validate", tmp_path / "nope.yaml")
    assert code == 1 and "does not exist" in err and "hint:" in err
    code, _, err = cli("validate", write_answers(tmp_path, "# only a comment\n"))
    assert code == 1 and "the answer file is empty" in err


def test_valid_minimal_file(tmp_path, cli):
    code, out, _ = cli("validate", write_answers(tmp_path, BASE_ANSWERS))
    assert (code, out) == (0, "valid\n")


def test_crypt_hashes_are_accepted():
    for h in ("$6$rounds=5000$salt$abcdefghijklmnop", "$y$j9T$abc$def", "$2b$12$abcdefghijklmnopqrstuv"):
        doc = yaml.safe_load(BASE_ANSWERS)
        doc["root"] = {"password_hash": h}
        assert answers.check(doc) == [], h


def test_repo_peers_follow_the_repository_schema():
    """The answers' repo.peers fields are the repository's own (no drift between the two schemas)."""
    from hypercore.repo import config
    ours = answers.schema()["properties"]["repo"]["properties"]
    theirs = config.schema()["properties"]
    for key in ("name", "address", "port", "role"):
        a, b = ours["peers"]["items"]["properties"][key], theirs["peers"]["items"]["properties"][key]
        for rule in ("pattern", "enum", "minimum", "maximum", "type"):
            assert a.get(rule) == b.get(rule), (key, rule)
    assert ours["role"]["enum"] == theirs["role"]["enum"]
    # `key` is the answers' own: it goes to authorized_keys (bound to the peer), not to repo.yaml.
    assert set(ours["peers"]["items"]["properties"]) - {"key"} <= set(theirs["peers"]["items"]["properties"])


def test_a_valid_repo_section():
    doc = yaml.safe_load(BASE_ANSWERS)
    doc["repo"] = {"role": "cache", "peers": [{"name": "srv", "address": "root@fd00::1", "port": 22,
                                               "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq1 hypercore-repo@srv"}],
                   "authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0 hypercore-repo@srv"]}
    assert answers.check(doc) == []
