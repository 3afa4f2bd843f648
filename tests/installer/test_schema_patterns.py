"""Every schema's patterns match whole strings (hypercore/schema.py): a value
with a newline at its end no longer passes `^...$` the way `re.search` let it."""

from __future__ import annotations

import pytest

from hypercore import definition, schema as whole
from hypercore.errors import UserError
from hypercore.repo import config
from hypercore_installer import answers

SCHEMAS = {"answers": answers.schema, "vm": definition.schema, "repo": config.schema}


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_pattern_is_anchored_at_both_ends(name):
    """`^...$` means the same in JSON Schema (ECMA-262) and under fullmatch,
    so editors that read the published schema agree with the installer."""
    found = list(whole.patterns(SCHEMAS[name]()))
    assert found
    for where, pattern in found:
        assert pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"), where


def test_the_validator_matches_whole_strings():
    v = whole.validator({"type": "string", "pattern": "^[a-z]+$"})
    assert v.is_valid("node") and not v.is_valid("node\n") and not v.is_valid("node\nx")


def test_a_vm_definition_with_a_trailing_newline_is_refused():
    good = {"name": "web", "memory_mb": 64, "cpus": 1,
            "disks": [{"type": "file", "path": "/var/lib/hypercore/web.qcow2", "format": "qcow2"}]}
    definition.validate(good)
    for bad in ({**good, "name": "web\n"}, {**good, "disks": [{**good["disks"][0], "path": "/x.qcow2\n"}]},
                {**good, "network": {"mode": "bridge", "bridge": "br0\n"}}):
        with pytest.raises(UserError, match="is not valid"):
            definition.validate(bad)


def test_a_repo_peer_with_a_trailing_newline_is_refused():
    good = {"peers": [{"name": "srv", "address": "root@192.168.1.22", "identity_file": "/etc/hypercore/repo/id"}]}
    assert config.problems(good) == []
    for key, value in (("name", "srv\n"), ("address", "root@h\n"), ("identity_file", "/etc/k\r")):
        paths = [path for path, _ in config.problems({"peers": [{**good["peers"][0], key: value}]})]
        assert paths == [["peers", 0, key]], key
