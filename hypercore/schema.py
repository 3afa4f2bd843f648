"""JSON schema validation as this project's schemas mean it: a `pattern`
matches the whole string.

jsonschema checks `pattern` with `re.search`, where `$` also matches before a
trailing newline: "node1\\n" passes "^[a-z0-9]+$". The schemas are written for
JSON Schema's own (ECMA-262) meaning, where `$` is the end of the text; here
every pattern must match the whole string (`re.fullmatch`), which is the same
for the `^...$` patterns the schemas use (tests check that every pattern has
that form). Use `validator(schema)` instead of jsonschema's classes."""

from __future__ import annotations

import functools
import re

import jsonschema
from jsonschema import Draft202012Validator, ValidationError


@functools.lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _whole_pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _compiled(pattern).fullmatch(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


WholeMatchValidator = jsonschema.validators.extend(
    Draft202012Validator, validators={"pattern": _whole_pattern})


def validator(schema: dict) -> Draft202012Validator:
    """A draft 2020-12 validator for schema whose patterns match whole strings."""
    return WholeMatchValidator(schema)


def patterns(node, where: str = "$"):
    """(where, pattern) of every `pattern` in a schema document."""
    if isinstance(node, dict):
        for key, sub in node.items():
            if key == "pattern" and isinstance(sub, str):
                yield where, sub
            else:
                yield from patterns(sub, f"{where}.{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from patterns(sub, f"{where}[{i}]")
