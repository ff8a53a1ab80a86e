"""Tool schemas for OpenAI's strict mode (structured outputs), decided once, at tool definition.

Strict mode accepts a subset of JSON Schema
(https://platform.openai.com/docs/guides/structured-outputs#supported-schemas): every object
lists all its properties as required and sets ``additionalProperties: false``; the keywords are
``type``, ``properties``, ``items``, ``enum``, ``anyOf``, ``$ref``/``$defs``, ``description``,
``pattern``, ``format`` (date-time, time, date, duration, email, hostname, ipv4, ipv6, uuid), the
numeric bounds and ``minItems``/``maxItems``; at most 10 levels of nesting, 5000 properties and
1000 enum values. A request with anything else fails whole, so:

* what has an accepted equivalent is converted (``oneOf`` → ``anyOf``, ``const`` → ``enum``,
  ``$ref`` beside other keys inlined, a single ``allOf`` merged); constraints the subset lacks
  (``format: uri``, ``minLength``, ``uniqueItems``...) move into the description, and the
  arguments are still validated against the full pydantic model when the call arrives;
* what has none (free-form ``dict``, ``Any``, tuples, ``not``...) makes the tool non-strict;

with a :class:`ToolSchemaWarning` either way. Optional parameters become nullable (``null`` means
"use the default", at any depth).

The openai SDK's ``to_strict_json_schema`` (``openai.lib._pydantic``) does the first part
(required, ``additionalProperties``, ``$ref`` unravelling) but passes ``oneOf``, ``discriminator``,
``format: uri`` and non-null defaults through unchanged, and lives in a private module of an
optional dependency; hence this module.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["STRICT_FORMATS", "ToolSchemaWarning", "strict_schema"]

#: String formats strict mode accepts.
STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_ALLOWED = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "anyOf",
        "$ref",
        "$defs",
        "definitions",
        "pattern",
        "format",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "minItems",
        "maxItems",
    }
)
# Dropped without a word: metadata the model does not need.
_DROPPED = frozenset({"title", "default", "examples", "readOnly", "writeOnly", "deprecated", "$comment"})
# Constraints the subset lacks: said in the description instead (and still validated on arrival).
_DESCRIBED = {
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "uniqueItems": "no repeated items",
    "minProperties": "at least {} entries",
    "maxProperties": "at most {} entries",
    "contentEncoding": "encoded as {}",
    "contentMediaType": "{}",
}
_MAX_DEPTH = 10
_MAX_PROPERTIES = 5000
_MAX_ENUM = 1000


class ToolSchemaWarning(UserWarning):
    """A tool's schema was adapted to strict mode, or is sent non-strict (see the message)."""


class NotStrict(Exception):
    """The schema has a part strict mode cannot express."""


def strict_schema(
    schema: Mapping[str, Any], defaults: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, list[str]]:
    """``(strict schema or None, notes)``: the strict variant of a tool's parameters schema, and
    what was changed to get it (or why there is none)."""
    out = copy.deepcopy(dict(schema))
    notes: list[str] = []
    defs = dict(out.get("$defs") or {})
    try:
        node = _Converter(defs, notes).object(out, top_defaults=defaults, path=(), depth=1, inlining=())
        _check_limits(node)
    except NotStrict as exc:
        return None, [str(exc)]
    return node, notes


class _Converter:
    def __init__(self, defs: dict[str, Any], notes: list[str]) -> None:
        self.defs = defs
        self.notes = notes

    def object(
        self,
        node: dict[str, Any],
        *,
        top_defaults: Mapping[str, Any] | None = None,
        path: tuple[str, ...],
        depth: int,
        inlining: tuple[str, ...],
    ) -> dict[str, Any]:
        converted = self.node(node, path=path, depth=depth, inlining=inlining, top_defaults=top_defaults)
        if top_defaults is not None and "$defs" in node:
            converted["$defs"] = {
                name: self.node(sub, path=("$defs", name), depth=depth, inlining=(name,))
                for name, sub in node["$defs"].items()
            }
        return converted

    def node(
        self,
        node: dict[str, Any],
        *,
        path: tuple[str, ...],
        depth: int,
        inlining: tuple[str, ...],
        top_defaults: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        where = "/".join(path) or "(parameters)"
        node = dict(node)
        if "$ref" in node and len(node) > 1:
            name = str(node["$ref"]).split("/")[-1]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            if name in inlining or name not in self.defs:
                node = {"$ref": node["$ref"]}  # recursive: the description next to it is lost
            else:
                node = {**copy.deepcopy(self.defs[name]), **extra}
                inlining = (*inlining, name)
        if "allOf" in node:
            parts = node.pop("allOf")
            if len(parts) != 1:
                raise NotStrict(f"{where}: 'allOf' with several schemas has no strict form")
            node = {**parts[0], **node}
            return self.node(node, path=path, depth=depth, inlining=inlining, top_defaults=top_defaults)
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
            self.notes.append(
                f"{where}: 'oneOf' sent as 'anyOf' (the alternatives are still checked on arrival)"
            )
        if node.pop("discriminator", None) is not None:
            self.notes.append(f"{where}: the union's discriminator is checked on arrival, not sent")
        if "const" in node:
            node["enum"] = [node.pop("const")]
        described: list[str] = []
        fmt = node.get("format")
        if fmt is not None and fmt not in STRICT_FORMATS:
            del node["format"]
            described.append(f"format: {fmt}")
            self.notes.append(
                f"{where}: format {fmt!r} is not in strict mode's list; said in the description"
            )
        for key, text in _DESCRIBED.items():
            if key in node:
                value = node.pop(key)
                if value is not False:
                    described.append(text.format(value))
                    if key not in ("contentEncoding", "contentMediaType"):
                        self.notes.append(f"{where}: {key!r} is not in strict mode; said in the description")
        for key in _DROPPED:
            node.pop(key, None)
        if described:
            note = "(" + "; ".join(described) + ")"
            node["description"] = f"{node['description']} {note}" if node.get("description") else note
        unknown = sorted(set(node) - _ALLOWED)
        if unknown:
            raise NotStrict(f"{where}: {', '.join(map(repr, unknown))} cannot be expressed in strict mode")
        if not any(k in node for k in ("type", "anyOf", "$ref", "enum")):
            raise NotStrict(f"{where}: a value of any type (Any, untyped) cannot be strict")
        if "anyOf" in node:
            node["anyOf"] = [
                self.node(sub, path=(*path, f"anyOf[{i}]"), depth=depth, inlining=inlining)
                for i, sub in enumerate(node["anyOf"])
            ]
        if "items" in node:
            if not isinstance(node["items"], dict):
                raise NotStrict(f"{where}: tuple-like arrays cannot be strict")
            node["items"] = self.node(node["items"], path=(*path, "items"), depth=depth, inlining=inlining)
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "object" in kinds or "properties" in node:
            self._object(node, path=path, depth=depth, inlining=inlining, top_defaults=top_defaults)
        return node

    def _object(
        self,
        node: dict[str, Any],
        *,
        path: tuple[str, ...],
        depth: int,
        inlining: tuple[str, ...],
        top_defaults: Mapping[str, Any] | None,
    ) -> None:
        where = "/".join(path) or "(parameters)"
        if depth > _MAX_DEPTH:
            raise NotStrict(f"{where}: objects nest more than {_MAX_DEPTH} levels")
        extra = node.get("additionalProperties")
        if extra not in (None, False) or "properties" not in node:
            raise NotStrict(f"{where}: a free-form object (dict, mapping) cannot be strict")
        required = set(node.get("required", []))
        props: dict[str, Any] = {}
        for name, sub in node["properties"].items():
            default = sub.get("default")
            if top_defaults is not None and name in top_defaults:
                default = top_defaults[name]
            converted = self.node(sub, path=(*path, name), depth=depth + 1, inlining=inlining)
            if name not in required:
                _make_nullable(converted)
                if default is not None:
                    note = f"(null = default {json.dumps(default, default=str)})"
                    converted["description"] = (
                        f"{converted['description']} {note}" if converted.get("description") else note
                    )
            props[name] = converted
        node["properties"] = props
        node["required"] = list(props)
        node["additionalProperties"] = False


def _make_nullable(sub: dict[str, Any]) -> None:
    if "anyOf" in sub:
        if not any(isinstance(s, dict) and s.get("type") == "null" for s in sub["anyOf"]):
            sub["anyOf"].append({"type": "null"})
        return
    if "$ref" in sub:
        ref = sub.pop("$ref")
        sub["anyOf"] = [{"$ref": ref}, {"type": "null"}]
        return
    kind = sub.get("type")
    if isinstance(kind, str):
        if kind != "null":
            sub["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        kind.append("null")
    if "enum" in sub and None not in sub["enum"]:
        sub["enum"].append(None)


def _check_limits(schema: Mapping[str, Any]) -> None:
    counts = {"properties": 0, "enum": 0}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                counts["properties"] += len(node["properties"])
            if isinstance(node.get("enum"), list):
                counts["enum"] += len(node["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    if counts["properties"] > _MAX_PROPERTIES:
        raise NotStrict(f"more than {_MAX_PROPERTIES} properties in all")
    if counts["enum"] > _MAX_ENUM:
        raise NotStrict(f"more than {_MAX_ENUM} enum values in all")


def nulls_to_defaults(value: Any, schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> Any:
    """``value`` without the ``null`` the model sent for optional fields that do not allow
    ``null`` (strict mode's way of leaving one out), at any depth, so their defaults apply."""
    defs = schema.get("$defs", {}) if defs is None else defs
    node = _resolve(schema, defs)
    alternatives = [*node.get("anyOf", []), *node.get("oneOf", [])]
    options = [o for o in alternatives if _resolve(o, defs).get("type") != "null"]
    if len(options) == 1:
        return nulls_to_defaults(value, _resolve(options[0], defs), defs)
    if isinstance(value, dict) and options:
        for option in options:
            target = _resolve(option, defs)
            if set(value) <= set(target.get("properties", {})):
                return nulls_to_defaults(value, target, defs)
        return value
    if isinstance(value, dict) and isinstance(node.get("properties"), dict):
        required = set(node.get("required", []))
        out = {}
        for key, item in value.items():
            sub = node["properties"].get(key)
            if item is None and sub is not None and key not in required and not _allows_null(sub, defs):
                continue
            out[key] = nulls_to_defaults(item, sub, defs) if sub is not None else item
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [nulls_to_defaults(item, node["items"], defs) for item in value]
    return value


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.split("/")[-1])
        if isinstance(target, Mapping):
            return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _allows_null(node: Mapping[str, Any], defs: Mapping[str, Any]) -> bool:
    node = _resolve(node, defs)
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if None in (node.get("enum") or []):
        return True
    return any(_allows_null(o, defs) for o in node.get("anyOf", []) + node.get("oneOf", []))
