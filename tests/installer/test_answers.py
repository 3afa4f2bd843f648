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


# Real hashes (of "hunter2"), as libxcrypt made them: every supported scheme.
GOOD_HASHES = [
    "$y$j9T$F5Jx5fExrKuPS9cIIbl0./$ZDPDvolbDUzxfqwb95.IQIxlrmYtdrOCYDvpyuPftU0",
    "$gy$jAT$abcdefghijklmnop$xK9HJ4F25Xji5Z9MODsL6hWQu8hxLVRW6vkNvvOKKgB",
    "$6$rounds=5000$salt$wAH.7/lcHCMJGFjRlqUqFxcc7YA/UTYSAsXRVlygbexkXyhkV2uwiJtwTlie0Eo8qerF9f.eK6LEsR.Tlhp/k0",
    "$6$$4O6PDC7KXp5vPTmysA1tV/c/evfdMBhM3L5jejAK89vUPedDcHRcf/JD.0lC0VsjECI84/Gb4qmWDNuQKwkzI.",
    "$5$saltsaltsaltsalt$LTm0e1epoLCOhH8WjaKAzYHFbzuOTFXssEJnxJiG5YC",
    "$2b$05$abcdefghijklmnopqrstuuoXuKqgZXLiJqzfmMXDDhSFPIvxV7t8.",
    "$2y$10$abcdefghijklmnopqrstuu7gIUFBKrYXdzQy8HrouzMJyZ4cijAb2",
]


@pytest.mark.parametrize("h", GOOD_HASHES, ids=lambda h: h[:4])
def test_crypt_hashes_are_accepted(h):
    doc = yaml.safe_load(BASE_ANSWERS)
    doc["root"] = {"password_hash": h}
    assert answers.check(doc) == [], h


@pytest.mark.parametrize("h, why", [
    ("$6$salt$", "hash part has 0 characters, not 86 (is it cut off?)"),
    ("$6$salt", "the hash part is missing"),
    (GOOD_HASHES[2][:-1], "hash part has 85 characters, not 86"),
    (GOOD_HASHES[2][:-1] + "2", "ends in a character that scheme never produces"),
    ("$6$rounds=999$salt$" + GOOD_HASHES[2].rsplit("$", 1)[1], "rounds= is not a number from 1000"),
    ("$6$saltsaltsaltsalt1$" + GOOD_HASHES[2].rsplit("$", 1)[1], "salt is not up to 16 characters"),
    (GOOD_HASHES[0][:-3], "hash part has 40 characters, not 43"),
    ("$y$j9T$abc$def", "salt is not one yescrypt makes"),
    (GOOD_HASHES[4] + "x", "hash part has 44 characters, not 43"),
    ("$2b$12$abcdefghijklmnopqrstuv", "not 53 (is it cut off?)"),
    ("$2b$03$" + GOOD_HASHES[5][7:], "COST 04 to 31"),
    ("$1$saltsalt$Hlm1i2pVm6ZjjkNc4yqo9.", "MD5 crypt ($1$) is too weak"),
    ("$2x$05$" + GOOD_HASHES[5][7:], "$2x$"),
    ("$9$abc$def", "a $9$ hash, which is not accepted"),
    ("hunter2", "not a crypt hash; plain passwords are refused"),
])
def test_incomplete_or_unsupported_crypt_hashes_are_refused(h, why):
    doc = yaml.safe_load(BASE_ANSWERS)
    doc["root"] = {"password_hash": h}
    problems = answers.check(doc)
    assert [p.path for p in problems] == ["root.password_hash"], problems
    assert why in problems[0].message and problems[0].hint
    assert h not in str(problems[0])  # never the hash itself


def test_a_block_scalar_password_hash_is_refused_by_validate(tmp_path, cli):
    """`password_hash: |` keeps a newline at its end: chpasswd failed at install
    step 10, after the disks were wiped. validate refuses it, without the hash."""
    text = BASE_ANSWERS.replace("root:\n", f"root:\n  password_hash: |\n    {GOOD_HASHES[0]}\n", 1)
    doc = yaml.safe_load(text)
    assert doc["root"]["password_hash"] == GOOD_HASHES[0] + "\n"
    code, out, err = cli("validate", write_answers(tmp_path, text))
    assert code == 1 and out == ""
    assert "root.password_hash: contains a newline at its end" in err and "|-" in err
    assert GOOD_HASHES[0] not in err and "plain passwords" not in err
    # The same hash on one line is fine.
    fixed = BASE_ANSWERS.replace("root:\n", f"root:\n  password_hash: '{GOOD_HASHES[0]}'\n", 1)
    assert cli("validate", write_answers(tmp_path, fixed))[0] == 0


def _static(**net):
    doc = yaml.safe_load(BASE_ANSWERS)
    doc["network"] = {"mode": "static", "interface": "enp3s0", "address": "192.168.1.10/24",
                      "gateway": "192.168.1.1", "dns": ["192.168.1.1"], **net}
    return doc


def test_an_address_with_a_zone_cannot_inject_into_the_network_file():
    """ipaddress takes anything after '%': `fe80::1%x\\n[Route]...` would have
    written a [Route] section into the systemd-networkd file."""
    doc = _static(address="fe80::1%x\n[Route]\nGateway=10.9.9.9/64", gateway="fe80::2")
    problems = answers.check(doc)
    assert [(p.path, p.message.split(";")[0]) for p in problems] == [
        ("network.address", "contains a newline at character 10")]
    for where, net in (("network.address", {"address": "fe80::1%eth0/64", "gateway": "fe80::2"}),
                       ("network.gateway", {"address": "fd00::10/64", "gateway": "fd00::1%eth0"}),
                       ("network.dns[0]", {"dns": ["fe80::53%enp3s0"]})):
        problems = answers.check(_static(**net))
        assert [p.path for p in problems] == [where] and "has a zone" in problems[0].message, problems
    assert answers.check(_static(address="fd00::10/64", gateway="fd00::1", dns=["fd00::53"])) == []


def test_a_netmask_is_not_a_prefix_length():
    for address in ("192.168.1.10/255.255.255.0", "192.168.1.10/024", "192.168.1.10/"):
        problems = answers.check(_static(address=address))
        assert [p.path for p in problems] == ["network.address"], address
        assert "is not an address with a prefix length" in problems[0].message


@pytest.mark.parametrize("iface", ["eth0:1", "52:54:00:12:34", "..", ".", "a" * 16, "en p3s0", "en/p3", "eth0\n"])
def test_interface_names_linux_cannot_have_are_refused(iface):
    for section, extra in (("network", {"mode": "dhcp"}), ("netboot", {"mode": "proxy"})):
        doc = yaml.safe_load(BASE_ANSWERS)
        doc[section] = {**extra, "interface": iface}
        assert [p.path for p in answers.check(doc)] == [f"{section}.interface"], (section, iface)


def test_interface_names_and_macs_still_accepted():
    for iface in ("enp3s0", "eth0", "br-lan.10", "wlp0s20f3", "a" * 15, "52:54:00:12:34:56", "52:54:00:AB:cd:EF"):
        doc = yaml.safe_load(BASE_ANSWERS)
        doc["network"] = {"mode": "dhcp", "interface": iface}
        assert answers.check(doc) == [], iface


@pytest.mark.parametrize("where, value", [
    ("hostname", "node1\t"), ("hostname", "node1\n"), ("timezone", "UTC\n"),
    ("target.path", "/dev/sda\n"), ("ceph.osd_disks[0]", "/dev/sda\r"),
    ("target.match.model", "Samsung\tSSD"), ("ceph.fsid", "6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f\n"),
    ("root.ssh_keys[0]", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g a\x7f"),
    ("netboot.interface", "enp4s0\n"), ("network.interface", "enp3s0\u2028"),
    ("after_install", "reboot\n"), ("netboot.mode", "proxy\x00"),
])
def test_a_control_character_in_any_string_is_refused_with_its_path(where, value):
    doc = yaml.safe_load(BASE_ANSWERS)
    doc.update(network={"mode": "dhcp"}, netboot={"mode": "proxy", "interface": "enp4s0"})
    if where.startswith("target.match"):
        doc["target"] = {"match": {}}
    *parents, last = re.findall(r"\w+", where)
    node = doc
    for key in parents:
        node = node[int(key) if key.isdigit() else key]
    node[int(last) if last.isdigit() else last] = value
    problems = answers.check(doc)
    assert [p.path for p in problems] == [where], problems
    assert problems[0].message.startswith("contains ") and "one line of printable text" in problems[0].message
    assert problems[0].hint


@pytest.mark.parametrize("mon, why", [
    ("1.2.3.4:99999", "port outside 1-65535"), ("node1:0", "port outside 1-65535"),
    ("1.2.3.999", "not an IPv4 address"), ("[1::2::3]:3300", "not an IPv6 address"),
    ("[fe80::1%eth0]:3300", "is not a host name or IP address"), ("fd00::1::2", "not an IPv6 address"),
    ("a..b", "not a host name"), ("node1\n", "contains a newline"),
])
def test_monitor_addresses_ceph_conf_cannot_take_are_refused(mon, why):
    doc = yaml.safe_load(BASE_ANSWERS)
    doc["ceph"] = {"mode": "join", "mon_hosts": ["192.168.1.10", mon], "osd_disks": ["/dev/sda"],
                   "key": "AQBvaBFZAAAAABAAwGxUCw0e+RWnE1vBqhC4QA=="}
    problems = answers.check(doc)
    assert [p.path for p in problems] == ["ceph.mon_hosts[1]"] and why in problems[0].message, problems


def test_monitor_addresses_still_accepted():
    doc = yaml.safe_load(BASE_ANSWERS)
    doc["ceph"] = {"mode": "join", "key": "AQBvaBFZAAAAABAAwGxUCw0e+RWnE1vBqhC4QA==", "osd_disks": ["/dev/sda"],
                   "mon_hosts": ["192.168.1.10", "192.168.1.11:6789", "[2001:db8::10]:3300", "fd00::1", "node1",
                                 "mon.example.org:3300"]}
    assert answers.check(doc) == []


def test_a_cut_off_ssh_key_is_refused():
    cut = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0 admin@laptop"
    doc = yaml.safe_load(BASE_ANSWERS)
    doc["root"]["ssh_keys"].append(cut)
    doc["repo"] = {"authorized_keys": [cut]}
    problems = answers.check(doc)
    assert [p.path for p in problems] == ["repo.authorized_keys[0]", "root.ssh_keys[1]"], problems
    assert all("cut off or damaged" in p.message for p in problems)


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
                                               "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
                                                      "hypercore-repo@srv"}],
                   "authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g "
                                       "hypercore-repo@srv"]}
    assert answers.check(doc) == []
