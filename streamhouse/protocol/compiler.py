"""Compile per-(message, version) encoders and decoders from the declarative schema.

For one message version the compiler emits straight-line Python source for every struct the
version reaches (runs of fixed-width fields become one precompiled ``struct.Struct``, varints
take an inline fast path) and ``exec``s it once. Nothing here knows any particular message.

Generated decoders have the shape ``d_<Struct>(buf, pos) -> (obj, pos)``; encoders
``e_<Struct>(obj, b, chunks) -> b`` append to the bytearray ``b`` and, at a records field,
push ``b`` and the records buffers onto ``chunks`` and continue in a fresh bytearray, so
record data is never copied.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

from streamhouse.protocol import primitives
from streamhouse.protocol.exceptions import ProtocolError
from streamhouse.protocol.primitives import FIXED_FORMATS
from streamhouse.protocol.schema_data import SCHEMAS

DecodeFn = Callable[[memoryview, int], tuple[Any, int]]
EncodeFn = Callable[[Any, bytearray, list], bytearray]

_DECODE_ERRORS = (struct.error, IndexError, ValueError, TypeError, OverflowError)
_ENCODE_ERRORS = (struct.error, AttributeError, ValueError, TypeError, OverflowError,
                  UnicodeEncodeError)
_FIXED_SIZE = {"bool": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
               "int64": 8, "float64": 8}
_STRUCTS = {code: struct.Struct(">" + code) for code in "?bhHiIqd"}


def _in(rng: tuple[int, int] | None, version: int) -> bool:
    return rng is not None and rng[0] <= version <= rng[1]


class _Source:
    """Indented source lines plus the constants the generated code refers to."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.lines: list[str] = []
        self.depth = 0
        self.counter = 0
        self.ns = namespace

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def tmp(self, stem: str = "t") -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def const(self, value: Any, stem: str = "K") -> str:
        name = self.tmp(stem)
        self.ns[name] = value
        return name

    def indent(self) -> _Indent:
        return _Indent(self)


class _Indent:
    def __init__(self, src: _Source) -> None:
        self.src = src

    def __enter__(self) -> None:
        self.src.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.src.depth -= 1


class _NoIndent:
    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


class _MessageCompiler:
    """Emits the decoders and encoders of every struct one message version reaches."""

    def __init__(self, top: type, version: int) -> None:
        self.top = top
        self.name = top.__name__
        self.schema: dict[str, Any] = SCHEMAS[self.name]
        self.version = version
        flex = self.schema["flexible"]
        self.flexible = _in(flex, version)
        self.ns: dict[str, Any] = {
            "PE": ProtocolError, "DERR": _DECODE_ERRORS, "EERR": _ENCODE_ERRORS,
            "ruv": primitives.read_uvarint, "uvb": primitives.uvarint_bytes,
            "ruuid": primitives.read_uuid, "s_sum": sum, "s_map": map,
            "unpack_from": struct.unpack_from, "pack": struct.pack, "s_str": str,
            "s_bytes": bytes, "describe": _describe, "new": object.__new__, "s_list": list,
            "s_tuple": tuple, "sorted": sorted,
        }
        for code, st in _STRUCTS.items():
            self.ns["U" + _code_name(code)] = st.unpack_from
            self.ns["P" + _code_name(code)] = st.pack
        self.src = _Source(self.ns)
        self.done: set[str] = set()

    # -- struct level ------------------------------------------------------------------

    def compile(self) -> tuple[DecodeFn, EncodeFn]:
        self.struct_fns("", self.top, self.schema["fields"])
        code = "\n".join(self.src.lines)
        exec(compile(code, f"<codec {self.name} v{self.version}>", "exec"), self.ns)
        return self.ns["d_"], self.ns["e_"]

    def struct_fns(self, sname: str, cls: type, fields: list[tuple]) -> None:
        if sname in self.done:
            return
        self.done.add(sname)
        present = [f for f in fields if _in(f[3], self.version)]
        for f in present:
            base = f[2].removeprefix("[]")
            if base in self.schema["structs"]:
                self.struct_fns(base, getattr(self.top, base), self.schema["structs"][base])
        where = f"{self.name}{'.' + sname if sname else ''} v{self.version}"
        self.ns["C_" + sname] = cls
        defaults = {f.name: f for f in dataclasses.fields(cls)}
        regular = [f for f in present if not _in(f[6], self.version)]
        tagged = [f for f in present if _in(f[6], self.version)]
        self.decoder(sname, where, regular, tagged, defaults)
        self.encoder(sname, where, regular, tagged, defaults)

    def decoder(self, sname: str, where: str, regular: list, tagged: list,
                defaults: dict[str, dataclasses.Field]) -> None:
        src = self.src
        src(f"def d_{sname}(buf, pos):")
        with src.indent():
            src("try:")
            with src.indent():
                kwargs = []
                for group in _runs(regular):
                    if isinstance(group, list):
                        names = [f"v_{f[1]}" for f in group]
                        codes = "".join(FIXED_FORMATS[f[2]] for f in group)
                        fn = src.const(struct.Struct(">" + codes).unpack_from, "U")
                        size = sum(_FIXED_SIZE[f[2]] for f in group)
                        src(f"{', '.join(names)}, = {fn}(buf, pos)")
                        src(f"pos += {size}")
                        kwargs += [f"{f[1]}={n}" for f, n in zip(group, names, strict=True)]
                    else:
                        self.read(group[2], _in(group[4], self.version), f"v_{group[1]}",
                                  "buf", group[0])
                        kwargs.append(f"{group[1]}=v_{group[1]}")
                if self.flexible:
                    for f in tagged:
                        src(f"v_{f[1]} = {self.default_expr(defaults[f[1]])}")
                        kwargs.append(f"{f[1]}=v_{f[1]}")
                    self.read_tags(tagged)
                    kwargs.append("unknown_tagged_fields=unknown")
                # object.__new__ plus slot stores beats the keyword __init__ by ~2x here
                src(f"o = new(C_{sname})")
                assigned = set()
                for kw in kwargs:
                    attr, value = kw.split("=")
                    assigned.add(attr)
                    src(f"o.{attr} = {value}")
                for attr, fld in defaults.items():
                    if attr not in assigned:
                        src(f"o.{attr} = {self.default_expr(fld)}")
                src("return o, pos")
            src("except DERR as exc:")
            with src.indent():
                src(f"raise PE(f'{where}: {{describe(exc)}} at byte {{pos}}') from None")

    def default_expr(self, fld: dataclasses.Field) -> str:
        if fld.default_factory is list:
            return "[]"
        if fld.default is not dataclasses.MISSING:
            return self.src.const(fld.default, "D")
        return self.src.const(fld.default_factory, "F") + "()"

    def read_tags(self, tagged: list) -> None:
        src = self.src
        src("unknown = []")
        self.read_uvarint("ntags", "buf")
        src("for _ in range(ntags) if ntags else ():")
        with src.indent():
            self.read_uvarint("tag", "buf")
            self.read_uvarint("size", "buf")
            src("end = pos + size")
            src("if end > len(buf):")
            src("    raise PE(f'tagged field {tag} of {size} bytes overruns the buffer')")
            first = True
            for f in tagged:
                src(f"{'if' if first else 'elif'} tag == {f[5]}:")
                first = False
                with src.indent():
                    src("sub = buf[:end]")
                    self.read(f[2], _in(f[4], self.version), f"v_{f[1]}", "sub", f[0])
            src("else:" if tagged else "if True:")
            with src.indent():
                src("unknown.append((tag, s_bytes(buf[pos:end])))")
            src("pos = end")

    def read_uvarint(self, target: str, buf: str) -> None:
        src = self.src
        src(f"{target} = {buf}[pos]")
        src("pos += 1")
        src(f"if {target} > 127:")
        src(f"    {target}, pos = ruv({buf}, pos - 1)")

    def read_length(self, target: str, buf: str, classic: str, nullable: bool,
                    label: str) -> None:
        """Leave the decoded length (or -1 for null) in target."""
        src = self.src
        if self.flexible:
            self.read_uvarint(target, buf)
            src(f"{target} -= 1")
        else:
            src(f"{target}, = U{_code_name(classic)}({buf}, pos)")
            src(f"pos += {2 if classic == 'h' else 4}")
        if not nullable:
            src(f"if {target} < 0:")
            src(f"    raise PE('null value for non-nullable field {label} at byte ' + str(pos))")

    def unless_null(self, nullable: bool, n: str, target: str) -> _Indent | _NoIndent:
        """Open the block that decodes a present value; null is -1 in n."""
        if not nullable:
            return _NoIndent()
        src = self.src
        src(f"if {n} < 0:")
        src(f"    {target} = None")
        src("else:")
        return src.indent()

    def read(self, ftype: str, nullable: bool, target: str, buf: str, label: str) -> None:
        src = self.src
        if ftype in FIXED_FORMATS:
            src(f"{target}, = U{_code_name(FIXED_FORMATS[ftype])}({buf}, pos)")
            src(f"pos += {_FIXED_SIZE[ftype]}")
        elif ftype == "uuid":
            src(f"{target} = ruuid({buf}, pos)")
            src("pos += 16")
        elif ftype in ("string", "bytes", "records"):
            n = src.tmp("n")
            self.read_length(n, buf, "h" if ftype == "string" else "i", nullable, label)
            with self.unless_null(nullable, n, target):
                src(f"end = pos + {n}")
                src(f"if end > len({buf}):")
                src(f"    raise PE('{label}: {{}} bytes overrun the buffer'.format({n}))")
                conv = {"string": "s_str({}, 'utf-8')", "bytes": "s_bytes({})", "records": "{}"}
                src(f"{target} = " + conv[ftype].format(f"{buf}[pos:end]"))
                src("pos = end")
        elif ftype.startswith("[]"):
            n = src.tmp("n")
            self.read_length(n, buf, "i", nullable, label)
            with self.unless_null(nullable, n, target):
                src(f"if {n} > len({buf}) - pos:")
                src(f"    raise PE('{label}: {{}} elements cannot fit the buffer'.format({n}))")
                elem = ftype[2:]
                if elem in FIXED_FORMATS:
                    code = FIXED_FORMATS[elem]
                    src(f"{target} = s_list(unpack_from('>%d{code}' % {n}, {buf}, pos))")
                    src(f"pos += {n} * {_FIXED_SIZE[elem]}")
                else:
                    item = src.tmp("x")
                    src(f"{target} = []")
                    src(f"for _ in range({n}):")
                    with src.indent():
                        if elem in self.schema["structs"]:
                            src(f"{item}, pos = d_{elem}({buf}, pos)")
                        else:
                            self.read(elem, False, item, buf, label)
                        src(f"{target}.append({item})")
        else:  # a single struct
            if nullable:
                src(f"if {buf}[pos] >= 128:")
                src(f"    {target} = None")
                src("    pos += 1")
                src("else:")
                src(f"    {target}, pos = d_{ftype}({buf}, pos + 1)")
            else:
                src(f"{target}, pos = d_{ftype}({buf}, pos)")

    # -- encoders ----------------------------------------------------------------------

    def encoder(self, sname: str, where: str, regular: list, tagged: list,
                defaults: dict[str, dataclasses.Field]) -> None:
        src = self.src
        src(f"def e_{sname}(o, b, chunks):")
        with src.indent():
            src("try:")
            with src.indent():
                for group in _runs(regular):
                    if isinstance(group, list):
                        codes = "".join(FIXED_FORMATS[f[2]] for f in group)
                        fn = src.const(struct.Struct(">" + codes).pack, "P")
                        src(f"b += {fn}({', '.join('o.' + f[1] for f in group)})")
                    else:
                        self.write(group[2], _in(group[4], self.version), f"o.{group[1]}",
                                   group[0])
                if self.flexible:
                    self.write_tags(tagged, defaults)
                src("return b")
            src("except EERR as exc:")
            with src.indent():
                src(f"raise PE(f'cannot encode {where}: {{describe(exc)}}') from None")

    def write_tags(self, tagged: list, defaults: dict[str, dataclasses.Field]) -> None:
        src = self.src
        if not tagged:
            src("if not o.unknown_tagged_fields:")
            src("    b.append(0)")
            src("else:")
            with src.indent():
                src("b = write_tags(b, sorted(o.unknown_tagged_fields, key=lambda t: t[0]))")
            self.ns["write_tags"] = _write_tags
            return
        # Tagged fields are nearly always at their defaults: test that first, so the common
        # case writes one zero byte without building a list of tags.
        checks = []
        for f in tagged:
            fld = defaults[f[1]]
            default = fld.default if fld.default is not dataclasses.MISSING \
                else fld.default_factory()  # type: ignore[misc,operator]
            local = src.tmp("tv")
            src(f"{local} = o.{f[1]}")
            checks.append((f, local, self.differs(local, default)))
        src(f"if not o.unknown_tagged_fields and not ({' or '.join(c for _, _, c in checks)}):")
        src("    b.append(0)")
        src("else:")
        with src.indent():
            src("tags = s_list(o.unknown_tagged_fields) if o.unknown_tagged_fields else []")
            for f, local, condition in checks:
                src(f"if {condition}:")
                with src.indent():
                    saved = src.tmp("saved")
                    src(f"{saved} = b")
                    src("b = bytearray()")
                    self.write(f[2], _in(f[4], self.version), local, f[0])
                    src(f"tags.append(({f[5]}, b))")
                    src(f"b = {saved}")
            src("if not tags:")
            src("    b.append(0)")
            src("else:")
            src("    tags.sort(key=lambda t: t[0])")
            src("    b = write_tags(b, tags)")
        self.ns["write_tags"] = _write_tags

    def differs(self, expr: str, default: Any) -> str:
        """A condition true when expr is not the default (Kafka omits default tagged fields).

        Structs are compared field by field: cheaper than a dataclass __eq__ per message.
        """
        if default is None:
            return f"{expr} is not None"
        if dataclasses.is_dataclass(default):
            cls = self.src.const(type(default), "C")
            parts = [f"{expr}.__class__ is not {cls}"]
            parts += [self.differs(f"{expr}.{fld.name}", getattr(default, fld.name))
                      for fld in dataclasses.fields(default)]
            return "(" + " or ".join(parts) + ")"
        if isinstance(default, bool | int | float | str | bytes):
            return f"{expr} != {default!r}"
        return f"{expr} != {self.src.const(default, 'D')}"

    def write_uvarint(self, expr: str) -> None:
        src = self.src
        n = src.tmp("u")
        src(f"{n} = {expr}")
        src(f"if {n} < 128:")
        src(f"    b.append({n})")
        src("else:")
        src(f"    b += uvb({n})")

    def write_length(self, expr: str, classic: str) -> None:
        """Write a length (expr may be -1 for null) in the version's encoding."""
        if self.flexible:
            self.write_uvarint(f"{expr} + 1")
        else:
            self.src(f"b += P{_code_name(classic)}({expr})")

    def write_null(self, classic: str) -> None:
        if self.flexible:
            self.src("b.append(0)")
        else:
            self.src("b += " + ("b'\\xff\\xff'" if classic == "h" else "b'\\xff\\xff\\xff\\xff'"))

    def write(self, ftype: str, nullable: bool, expr: str, label: str) -> None:
        src = self.src
        value = src.tmp("w")
        src(f"{value} = {expr}")
        if ftype in FIXED_FORMATS:
            src(f"b += P{_code_name(FIXED_FORMATS[ftype])}({value})")
            return
        if ftype == "uuid":
            src(f"b += {value}.bytes")
            return
        is_struct = ftype in self.schema["structs"]
        classic = "h" if ftype == "string" else "i"
        src(f"if {value} is None:")
        with src.indent():
            if not nullable:
                src(f"raise PE('null value for non-nullable field {label}')")
            elif is_struct:
                src("b.append(255)")
            else:
                self.write_null(classic)
        src("else:")
        with src.indent():
            if ftype == "string":
                src(f"{value} = {value}.encode('utf-8')")
                self.write_length(f"len({value})", "h")
                src(f"b += {value}")
            elif ftype == "bytes":
                self.write_length(f"len({value})", "i")
                src(f"b += {value}")
            elif ftype == "records":
                # records buffers are byte-formatted, so len() is their size in bytes
                src(f"if type({value}) is s_list or type({value}) is s_tuple:")
                with src.indent():
                    self.write_length(f"s_sum(s_map(len, {value}))", "i")
                    src("chunks.append(b)")
                    src(f"chunks.extend({value})")
                src("else:")
                with src.indent():
                    self.write_length(f"len({value})", "i")
                    src("chunks.append(b)")
                    src(f"chunks.append({value})")
                src("b = bytearray()")
            elif ftype.startswith("[]"):
                elem = ftype[2:]
                self.write_length(f"len({value})", "i")
                if elem in FIXED_FORMATS:
                    src(f"b += pack('>%d{FIXED_FORMATS[elem]}' % len({value}), *{value})")
                else:
                    item = src.tmp("x")
                    src(f"for {item} in {value}:")
                    with src.indent():
                        if elem in self.schema["structs"]:
                            src(f"b = e_{elem}({item}, b, chunks)")
                        else:
                            self.write(elem, False, item, label)
            else:
                if nullable:
                    src("b.append(1)")
                src(f"b = e_{ftype}({value}, b, chunks)")


def _describe(exc: BaseException) -> str:
    """Name and short text of an exception, never a dump of the buffer it was about."""
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _write_tags(b: bytearray, tags: list[tuple[int, bytes]]) -> bytearray:
    b += primitives.uvarint_bytes(len(tags))
    for tag, payload in tags:
        b += primitives.uvarint_bytes(tag)
        b += primitives.uvarint_bytes(len(payload))
        b += payload
    return b


_CODE_NAMES = {"?": "bool", "b": "i8", "h": "i16", "H": "u16", "i": "i32", "I": "u32",
               "q": "i64", "d": "f64"}


def _code_name(code: str) -> str:
    return _CODE_NAMES[code]


def _runs(fields: list[tuple]) -> list:
    """Group consecutive fixed-width fields into lists; other fields stay single."""
    out: list = []
    for f in fields:
        if f[2] in FIXED_FORMATS:
            if out and isinstance(out[-1], list):
                out[-1].append(f)
            else:
                out.append([f])
        else:
            out.append(f)
    return out


_CACHE: dict[tuple[type, int], tuple[DecodeFn, EncodeFn]] = {}


def codec_for(cls: type, version: int) -> tuple[DecodeFn, EncodeFn]:
    """The compiled (decoder, encoder) of a top-level message class at a version."""
    key = (cls, version)
    fns = _CACHE.get(key)
    if fns is None:
        lo, hi = cls.VALID_VERSIONS  # type: ignore[attr-defined]
        if not lo <= version <= hi:
            raise ProtocolError(f"{cls.__name__} has no version {version} (valid {lo}-{hi})")
        fns = _CACHE[key] = _MessageCompiler(cls, version).compile()
    return fns


def generated_source(cls: type, version: int) -> str:
    """The source the compiler generates for one message version (for debugging)."""
    comp = _MessageCompiler(cls, version)
    comp.struct_fns("", cls, comp.schema["fields"])
    return "\n".join(comp.src.lines)
