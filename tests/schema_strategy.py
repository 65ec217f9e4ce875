"""Hypothesis strategies from the stage's exported JSON Schema.

Only the keywords the exported schemas use: `type`, `properties`/`required`,
`additionalProperties: false`, `$ref`/`$defs`, `anyOf`, `enum`/`const`, `items` with
`minItems`/`maxItems`, `minimum`/`maximum`, `minLength`/`maxLength`, `pattern` and the `date`/`date-time` formats.
An unknown keyword fails loudly, so a contract change cannot silently narrow what is
generated.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

KNOWN = {
    "$defs", "$id", "$ref", "$schema", "additionalProperties", "anyOf", "const", "default",
    "description", "enum", "format", "items", "maxItems", "maxLength", "minItems", "minLength",
    "maximum", "minimum", "pattern", "properties", "required", "title", "type",
}  # fmt: skip


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    return _strategy(schema, schema.get("$defs", {}))


def _strategy(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    unknown = set(node) - KNOWN
    if unknown:
        raise ValueError(f"schema keywords this strategy does not know: {sorted(unknown)}")
    if "$ref" in node:
        return st.deferred(lambda: _strategy(defs[node["$ref"].rsplit("/", 1)[-1]], defs))
    if "anyOf" in node:
        return st.one_of([_strategy(option, defs) for option in node["anyOf"]])
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    return _typed(node, defs)


def _typed(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A node that says what it is by its `type`."""
    kind = node.get("type")
    if kind == "object":
        return _object(node, defs)
    if kind == "array":
        return st.lists(
            _strategy(node.get("items", {}), defs),
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", 6), 6),
        )
    if kind == "integer":
        return st.integers(node.get("minimum", -(2**31)), node.get("maximum", 2**31))
    if kind == "string":
        return _string(node)
    simple = {"null": st.none(), "boolean": st.booleans()}
    if kind in simple:
        return simple[kind]
    raise ValueError(f"schema node this strategy does not know: {node}")


def _object(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    required = set(node.get("required", ()))
    properties = node.get("properties", {})
    return st.fixed_dictionaries(
        {name: _strategy(sub, defs) for name, sub in properties.items() if name in required},
        optional={
            name: _strategy(sub, defs) for name, sub in properties.items() if name not in required
        },
    )


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = node.get("format")
    if fmt == "date":
        return st.dates().map(lambda d: d.isoformat())
    if fmt == "date-time":
        return st.datetimes().map(lambda d: d.isoformat() + "Z")
    longest = node.get("maxLength", 12)
    if "pattern" in node:
        return st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: len(s) <= longest)
    return st.text(
        st.characters(codec="utf-8"), min_size=node.get("minLength", 0), max_size=min(longest, 12)
    )
