"""Per-op stage parameter checks: plan JSON `params` → typed `StageParams` plus diagnostics.

Code choice (a §6 reading): every problem inside `params` is `invalid_params` (missing,
unknown or ill-typed parameter, a malformed field path), except where §6 names a sharper
code: a bad URL is `invalid_url`, a bad DataGuard rule `invalid_rule`, and a bare value
holding a control character `invalid_value`. Route targets are checked against the
stage's connections later, with the graph (`unknown_reference`).
"""

from __future__ import annotations

from collections.abc import Callable

from byteor_cloud.spec.diagnostics import DiagnosticCode as C
from byteor_cloud.spec.diagnostics import Sink
from byteor_cloud.spec.jsonvalues import Json, JsonValue, pointer_child
from byteor_cloud.spec.model import (
    DataguardParams,
    DataguardRule,
    ExecParams,
    FilterOp,
    FilterParams,
    HttpPostParams,
    IdentityParams,
    MapParams,
    Op,
    RouteParams,
    StageParams,
)
from byteor_cloud.spec.rules import InvalidRuleError, parse_rule
from byteor_cloud.spec.syntax import has_control_chars, is_field
from byteor_cloud.spec.urls import InvalidUrlError, normalise_url

_ALLOWED: dict[Op, frozenset[str]] = {
    Op.identity: frozenset(),
    Op.filter: frozenset({"field", "op", "value"}),
    Op.map: frozenset({"set", "rename", "drop"}),
    Op.dataguard: frozenset({"rules"}),
    Op.route: frozenset({"field", "cases", "default"}),
    Op.http_post: frozenset({"url"}),
    Op.exec: frozenset({"program", "args"}),
}


class _Params:
    """Reads one stage's params object, reporting into the sink."""

    def __init__(self, raw: dict[str, Json], path: str, sink: Sink) -> None:
        self.raw = raw
        self.path = path
        self.sink = sink

    def at(self, *parts: str | int) -> str:
        path = self.path
        for part in parts:
            path = pointer_child(path, part)
        return path

    def bad(self, message: str, *parts: str | int, code: C = C.invalid_params) -> None:
        self.sink.error(code, self.at(*parts), message)

    def bare(self, value: str, *parts: str | int) -> bool:
        if has_control_chars(value):
            self.bad("control characters are not allowed here", *parts, code=C.invalid_value)
            return False
        return True

    def string(self, name: str, *, required: bool = True) -> str | None:
        value = self.raw.get(name)
        if value is None and name not in self.raw:
            if required:
                self.bad(f"missing param `{name}`", name)
            return None
        if not isinstance(value, str):
            self.bad(f"param `{name}` must be a string", name)
            return None
        return value if self.bare(value, name) else None

    def field(self, name: str) -> str | None:
        value = self.string(name)
        if value is not None and not is_field(value):
            self.bad(f"{value!r} is not a field path like `a.b_c`", name)
            return None
        return value

    def obj(self, name: str, *, required: bool = False) -> dict[str, Json] | None:
        if name not in self.raw:
            if required:
                self.bad(f"missing param `{name}`", name)
            return None
        value = self.raw[name]
        if not isinstance(value, dict):
            self.bad(f"param `{name}` must be an object", name)
            return None
        return value

    def array(self, name: str, *, required: bool = False) -> list[Json] | None:
        if name not in self.raw:
            if required:
                self.bad(f"missing param `{name}`", name)
            return None
        value = self.raw[name]
        if not isinstance(value, list):
            self.bad(f"param `{name}` must be an array", name)
            return None
        return value

    def field_list(self, items: list[Json], name: str) -> list[str]:
        fields: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.bad("must be a field path string", name, i)
            elif not self.bare(item, name, i):
                continue
            elif not is_field(item):
                self.bad(f"{item!r} is not a field path", name, i)
            else:
                fields.append(item)
        return fields


def check_params(op: Op, raw: Json, path: str, sink: Sink) -> StageParams | None:
    """Check a stage's `params` for `op`; typed params, or None when it reported errors."""
    params_path = pointer_child(path, "params")
    if not isinstance(raw, dict):
        sink.error(C.wrong_type, params_path, "`params` must be an object")
        return None
    before = sink.error_count()
    reader = _Params(raw, params_path, sink)
    for name in sorted(raw):
        if name not in _ALLOWED[op]:
            reader.bad(f"`{op}` takes no param `{name}`", name)
    result = _CHECKS[op](reader)
    return result if sink.error_count() == before else None


def _identity(_: _Params) -> StageParams:
    return IdentityParams()


def _filter(p: _Params) -> StageParams | None:
    field = p.field("field")
    name = p.string("op")
    if name is not None and name not in set(FilterOp):
        p.bad("`op` must be one of eq, ne, in, exists, gt, lt", "op")
        return None
    if field is None or name is None:
        return None
    operator = FilterOp(name)
    if operator is FilterOp.exists:
        if "value" in p.raw:
            p.bad("`exists` takes no `value`", "value")
        return FilterParams(field, operator)
    if "value" not in p.raw:
        p.bad(f"`{operator}` needs a `value`", "value")
        return None
    value = p.raw["value"]
    if operator is FilterOp.in_ and not isinstance(value, list):
        p.bad("`in` needs an array `value`", "value")
        return None
    return FilterParams(field, operator, JsonValue.of(value))


def _map(p: _Params) -> StageParams | None:
    set_fields: list[tuple[str, JsonValue]] = []
    for key, value in (p.obj("set") or {}).items():
        if is_field(key):
            set_fields.append((key, JsonValue.of(value)))
        else:
            p.bad(f"{key!r} is not a field path", "set", key)
    rename: list[tuple[str, str]] = []
    targets: set[str] = set()
    for key, value in (p.obj("rename") or {}).items():
        if not is_field(key):
            p.bad(f"{key!r} is not a field path", "rename", key)
        elif not isinstance(value, str) or not is_field(value):
            p.bad("a rename target must be a field path", "rename", key)
        elif value in targets:
            p.bad(f"two fields are renamed to {value!r}", "rename", key)
        else:
            targets.add(value)
            rename.append((key, value))
    drops = p.array("drop")
    drop = p.field_list(drops, "drop") if drops is not None else []
    return MapParams(tuple(set_fields), tuple(rename), tuple(drop))


def _dataguard(p: _Params) -> StageParams | None:
    items = p.array("rules", required=True)
    if items is None:
        return None
    rules: list[DataguardRule] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            p.bad("a rule must be a string", "rules", i, code=C.invalid_rule)
        elif p.bare(item, "rules", i):
            try:
                rules.append(parse_rule(item))
            except InvalidRuleError as exc:
                p.bad(f"{item!r}: {exc}", "rules", i, code=C.invalid_rule)
    return DataguardParams(tuple(rules))


def _route(p: _Params) -> StageParams | None:
    field = p.field("field")
    cases_raw = p.obj("cases", required=True)
    cases: list[tuple[str, str]] = []
    for key, value in (cases_raw or {}).items():
        if not isinstance(value, str):
            p.bad("a case must name a target id", "cases", key)
        elif p.bare(value, "cases", key):
            cases.append((key, value))
    default = p.string("default", required=False)
    if field is None:
        return None
    return RouteParams(field, tuple(cases), default)


def _http_post(p: _Params) -> StageParams | None:
    url = p.string("url")
    if url is None:
        return None
    try:
        return HttpPostParams(normalise_url(url))
    except InvalidUrlError as exc:
        p.bad(f"{url!r}: {exc}", "url", code=C.invalid_url)
        return None


def _exec(p: _Params) -> StageParams | None:
    program = p.string("program")
    if program == "":
        p.bad("`program` must not be empty", "program")
        return None
    args_raw = p.array("args")
    args: list[str] = []
    for i, item in enumerate(args_raw or []):
        if isinstance(item, str):
            args.append(item)
        else:
            p.bad("an argument must be a string", "args", i)
    if program is None:
        return None
    return ExecParams(program, tuple(args))


_CHECKS: dict[Op, Callable[[_Params], StageParams | None]] = {
    Op.identity: _identity,
    Op.filter: _filter,
    Op.map: _map,
    Op.dataguard: _dataguard,
    Op.route: _route,
    Op.http_post: _http_post,
    Op.exec: _exec,
}
