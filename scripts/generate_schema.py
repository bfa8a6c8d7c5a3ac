"""Generate streamhouse/protocol/schema_data.py and messages.py from Kafka's message specs.

Usage: python scripts/generate_schema.py SPEC_DIR

SPEC_DIR is a directory of Kafka message specification files (JSON with ``//`` comments).
The output keeps only what the codec needs (names, types, versions, tags, defaults); none of
the specs' prose. Every struct declared inside a message, including its commonStructs, becomes
a nested class of that message, flattened the way Kafka's Java classes are. Two structs with the
same name inside one message must have identical fields (Kafka's generator enforces the same);
the generator refuses the specs otherwise, so a nested name always denotes one struct.
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import sys
from pathlib import Path
from typing import Any

OPEN_END = 0x7FFF
SCALARS = {"bool", "int8", "int16", "uint16", "int32", "uint32", "int64", "float64", "string",
           "uuid", "bytes", "records"}
PY_TYPES = {"bool": "bool", "int8": "int", "int16": "int", "uint16": "int", "int32": "int",
            "uint32": "int", "int64": "int", "float64": "float", "string": "str",
            "uuid": "uuid.UUID", "bytes": "bytes", "records": "RecordsValue"}
ROOT = Path(__file__).resolve().parents[1]


def parse_versions(text: str | None) -> tuple[int, int] | None:
    """Parse a spec version range ("0+", "3-5", "7", "none") into an inclusive tuple."""
    if text is None or text == "none":
        return None
    if text.endswith("+"):
        return (int(text[:-1]), OPEN_END)
    if "-" in text:
        lo, hi = text.split("-")
        return (int(lo), int(hi))
    return (int(text), int(text))


def snake_case(name: str) -> str:
    """Kafka field name to attribute name: TopicId -> topic_id, ISRVersion -> isr_version."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    return s + "_" if keyword.iskeyword(s) else s


def load_spec(path: Path) -> dict:
    text = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)
    return json.loads(text)


def spec_default(ftype: str, raw: Any, versions, nullable) -> Any:
    """The Python default of a scalar field, following Kafka's rules for implicit defaults."""
    all_nullable = nullable is not None and versions is not None and (
        nullable[0] <= versions[0] and nullable[1] >= versions[1])
    if ftype == "records":
        return None
    if raw is None:
        if all_nullable:
            return None
        return {"bool": False, "float64": 0.0, "string": "", "bytes": b"",
                "uuid": "uuid0"}.get(ftype, 0)
    if raw == "null":
        return None
    if ftype == "bool":
        return str(raw).lower() == "true"
    if ftype == "float64":
        return float(raw)
    if ftype == "string":
        return str(raw)
    if ftype in ("bytes", "uuid"):
        raise ValueError(f"custom default not supported for {ftype}")
    text = str(raw).strip()
    neg = text.startswith("-")
    text = text.lstrip("-")
    if text.lower().startswith("0x"):
        value = int(text, 16)
    elif len(text) > 1 and text.startswith("0"):
        value = int(text, 8)
    else:
        value = int(text)
    return -value if neg else value


class MessageBuilder:
    """Collects the flattened structs of one message."""

    def __init__(self, spec: dict) -> None:
        self.name = spec["name"]
        self.structs: dict[str, list[tuple]] = {}
        self.order: list[str] = []
        self.common = {cs["name"]: cs["fields"] for cs in spec.get("commonStructs", [])}
        self.raw_seen: dict[str, str] = {}
        self.fields = self.convert_fields(spec["fields"])
        for name, fields in self.common.items():
            if name not in self.structs:
                self.define(name, fields)

    def define(self, name: str, raw_fields: list[dict]) -> None:
        fingerprint = json.dumps(raw_fields, sort_keys=True)
        if name in self.raw_seen:
            if self.raw_seen[name] != fingerprint:
                raise ValueError(f"{self.name}: struct {name} defined twice with different fields")
            return
        self.raw_seen[name] = fingerprint
        self.structs[name] = []  # placeholder keeps recursion finite
        converted = self.convert_fields(raw_fields)
        self.structs[name] = converted
        self.order.append(name)

    def convert_fields(self, raw_fields: list[dict]) -> list[tuple]:
        out = []
        seen_attrs = set()
        for f in raw_fields:
            ftype = f["type"]
            base = ftype.removeprefix("[]")
            versions = parse_versions(f.get("versions"))
            nullable = parse_versions(f.get("nullableVersions"))
            tag = None if f.get("tag") is None else int(f["tag"])
            tagged = parse_versions(f.get("taggedVersions"))
            if base not in SCALARS:
                self.define(base, f["fields"] if "fields" in f else self.common[base])
                default = None if nullable is not None else "struct"
                if ftype.startswith("[]"):
                    default = "list" if not self._all(versions, nullable) else None
            elif ftype.startswith("[]"):
                default = "list" if not self._all(versions, nullable) else None
            else:
                default = spec_default(ftype, f.get("default"), versions, nullable)
            attr = snake_case(f["name"])
            if attr in seen_attrs:
                raise ValueError(f"{self.name}: duplicate attribute {attr}")
            seen_attrs.add(attr)
            out.append((f["name"], attr, ftype, versions, nullable, tag, tagged, default))
        return out

    @staticmethod
    def _all(versions, nullable) -> bool:
        return nullable is not None and versions is not None and (
            nullable[0] <= versions[0] and nullable[1] >= versions[1])


def build(spec_dir: Path) -> dict[str, dict]:
    schemas: dict[str, dict] = {}
    for path in sorted(spec_dir.glob("*.json")):
        spec = load_spec(path)
        if spec["type"] == "header":
            continue  # request/response headers are fixed by the codec itself
        mb = MessageBuilder(spec)
        schemas[spec["name"]] = {
            "api_key": spec.get("apiKey", -1),
            "type": spec["type"],
            "valid": parse_versions(spec["validVersions"]),
            "flexible": parse_versions(spec.get("flexibleVersions", "none")),
            "fields": mb.fields,
            "structs": {name: mb.structs[name] for name in mb.order},
        }
    return schemas


def render_schema_data(schemas: dict[str, dict]) -> str:
    header = (
        '"""Kafka message schemas: generated by scripts/generate_schema.py, do not edit.\n\n'
        "SCHEMAS maps a message name to api_key (-1 for non-API data), type, valid and flexible\n"
        "version ranges (inclusive, 0x7FFF = open ended, None = never) and its fields. A field is\n"
        "(spec name, attribute, type, versions, nullable versions, tag, tagged versions, default)\n"
        "where default is a literal, 'list', 'struct', 'uuid0' or None. structs holds every\n"
        'nested struct of the message by name, leaves first.\n"""\n\n'
    )
    out = [header, "from typing import Any", "", "SCHEMAS: dict[str, dict[str, Any]] = {"]
    for name, msg in schemas.items():
        out.append(f"    {name!r}: {{")
        for key in ("api_key", "type", "valid", "flexible"):
            out.append(f"        {key!r}: {msg[key]!r},")
        out.append("        'fields': [")
        out += [f"            {f!r}," for f in msg["fields"]]
        out.append("        ],")
        out.append("        'structs': {")
        for sname, sfields in msg["structs"].items():
            out.append(f"            {sname!r}: [")
            out += [f"                {f!r}," for f in sfields]
            out.append("            ],")
        out.append("        },")
        out.append("    },")
    out.append("}")
    return "\n".join(out) + "\n"


def py_annotation(ftype: str, owner: str, nullable) -> str:
    base = ftype.removeprefix("[]")
    inner = PY_TYPES.get(base) or f"{owner}.{base}"
    text = f"list[{inner}]" if ftype.startswith("[]") else inner
    if nullable is not None and base != "records":
        text += " | None"
    return text


def py_default(ftype: str, owner: str, default: object, in_struct: bool) -> str:
    base = ftype.removeprefix("[]")
    if default == "list":
        return "field(default_factory=list)"
    if default == "struct":
        # A nested class's body cannot see its sibling classes; the lambda looks the struct
        # up when an instance is made. The message's own body sees them by name.
        return f"field(default_factory=lambda: {owner}.{base}())" if in_struct else (
            f"field(default_factory={base})")
    if default == "uuid0":
        return "ZERO_UUID"
    return repr(default)


def fit(line: str) -> str:
    """Generated names can be long; mark the lines that cannot be wrapped."""
    return line + "  # noqa: E501" if len(line) > 100 else line


def render_class(class_name: str, owner: str, fields: list[tuple], body: list[str],
                 indent: str = "") -> list[str]:
    """A dataclass: `body` (constants, nested classes) comes before the fields."""
    lines = [f"{indent}@dataclass(slots=True, kw_only=True)", f"{indent}class {class_name}:"]
    lines += body
    for _name, attr, ftype, _v, nullable, _t, _tv, default in fields:
        annotation = py_annotation(ftype, owner, nullable)
        value = py_default(ftype, owner, default, in_struct=bool(indent))
        lines.append(fit(f"{indent}    {attr}: {annotation} = {value}"))
    lines.append(f"{indent}    unknown_tagged_fields: list[tuple[int, bytes]] = "
                 "field(default_factory=list)")
    return lines


def render_messages(schemas: dict[str, dict]) -> str:
    out = [
        '"""Kafka message classes: generated by scripts/generate_schema.py, do not edit.',
        "",
        "One dataclass per message of Kafka's specs, holding the union of the fields of every",
        "version. Structs declared inside a message are classes nested in it",
        "(ProduceRequest.TopicProduceData). Fields absent from a version keep their defaults.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import uuid",
        "from dataclasses import dataclass, field",
        "from typing import TypeAlias",
        "",
        "ZERO_UUID = uuid.UUID(int=0)",
        "RecordBytes: TypeAlias = bytes | bytearray | memoryview",
        "RecordsValue: TypeAlias = (",
        "    RecordBytes | list[RecordBytes] | list[memoryview] | tuple[RecordBytes, ...] | None",
        ")",
    ]
    requests, responses = [], []
    for name, msg in schemas.items():
        flex = msg["flexible"][0] if msg["flexible"] else None
        body = [f"    API_KEY = {msg['api_key']}",
                f"    VALID_VERSIONS = {tuple(msg['valid'])!r}",
                f"    FLEXIBLE_VERSIONS = {flex!r}"]
        for sname, sfields in msg["structs"].items():  # leaves first
            body += ["", *render_class(sname, name, sfields, [], indent="    ")]
        if msg["structs"]:
            body.append("")
        out += ["", "", *render_class(name, name, msg["fields"], body)]
        if msg["type"] == "request":
            requests.append((msg["api_key"], name))
        elif msg["type"] == "response":
            responses.append((msg["api_key"], name))
    out += ["", "", "REQUEST_TYPES: dict[int, type] = {"]
    out += [f"    {key}: {name}," for key, name in sorted(requests)]
    out += ["}", "RESPONSE_TYPES: dict[int, type] = {"]
    out += [f"    {key}: {name}," for key, name in sorted(responses)]
    out += ["}", "DATA_TYPES: dict[str, type] = {"]
    out += [f"    {name!r}: {name}," for name, m in schemas.items()
            if m["type"] not in ("request", "response")]
    out += ["}", ""]
    return "\n".join(out)


def render_api_keys(schemas: dict[str, dict]) -> str:
    out = ['"""Kafka API keys: generated by scripts/generate_schema.py, do not edit."""', "",
           "from __future__ import annotations", "", "from enum import IntEnum", "", "",
           "class ApiKey(IntEnum):",
           '    """The api key of every request in Kafka\'s specs, named as Kafka names it."""',
           ""]
    keys = sorted((m["api_key"], name.removesuffix("Request"))
                  for name, m in schemas.items() if m["type"] == "request")
    out += [f"    {snake_case(name).upper()} = {key}" for key, name in keys]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec_dir", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "streamhouse" / "protocol")
    args = parser.parse_args(argv)
    schemas = build(args.spec_dir)
    (args.out / "schema_data.py").write_text(render_schema_data(schemas))
    (args.out / "messages.py").write_text(render_messages(schemas))
    (args.out / "api_keys.py").write_text(render_api_keys(schemas))
    print(f"{len(schemas)} messages written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
