"""`byteor-cloud spec …`: offline compiler commands (validate, describe, dot, svg, diff, hash).

Every command reads a plan (JSON or YAML) or a spec.kv file (recognised by its first
line, `spec.v=`), or stdin for `-`. Exit status: 0 on success, 1 when the plan has errors
or the spec.kv is invalid, 2 when the file cannot be read. `--json` prints one JSON
object on stdout for scripts; a plan with errors then prints its CompileReportV1.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from byteor_cloud.spec import (
    CompileReport,
    Diagnostic,
    PipelineSpecV1,
    SpecDecodeError,
    compile_plan,
    decode_spec,
    encode_spec,
    spec_hash_of_text,
)
from byteor_cloud.spec.diff import diff_specs
from byteor_cloud.spec.svg import to_svg
from byteor_cloud.spec.topology import summarise
from byteor_cloud.spec.views import describe as describe_text
from byteor_cloud.spec.views import to_dot

app = typer.Typer(
    name="spec",
    help="Offline pipeline-plan tools: validate, describe, draw, diff and hash.",
    no_args_is_help=True,
    add_completion=False,
)

FileArg = Annotated[str, typer.Argument(help="A plan (JSON/YAML) or spec.kv file; - for stdin.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts).")]


@dataclass(frozen=True)
class _Input:
    """A compiled plan or a decoded spec.kv."""

    spec: PipelineSpecV1 | None
    spec_kv: str | None
    report: CompileReport | None
    error: str | None = None


def _read(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        typer.echo(f"error: cannot read {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None


def _load(path: str) -> _Input:
    data = _read(path)
    if data.startswith(b"spec.v="):
        try:
            spec = decode_spec(data)
        except SpecDecodeError as exc:
            return _Input(None, None, None, f"{path}: {exc.message}")
        return _Input(spec, data.decode("utf-8"), None)
    report = compile_plan(data)
    return _Input(report.spec, report.spec_kv, report)


def _emit_json(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def _diagnostic_line(diagnostic: Diagnostic) -> str:
    path = diagnostic.path or "/"
    return f"{diagnostic.severity:<8}{diagnostic.code:<24}{path}  {diagnostic.message}"


def _fail(loaded: _Input, as_json: bool) -> NoReturn:
    if loaded.report is not None:
        if as_json:
            _emit_json(loaded.report.as_dict())
        else:
            for diagnostic in loaded.report.diagnostics:
                typer.echo(_diagnostic_line(diagnostic), err=True)
            typer.echo(f"{len(loaded.report.errors)} error(s)", err=True)
    elif as_json:
        _emit_json({"error": {"code": "invalid_spec", "message": loaded.error}})
    else:
        typer.echo(f"error: {loaded.error}", err=True)
    raise typer.Exit(1)


def _require(path: str, as_json: bool) -> tuple[PipelineSpecV1, str]:
    loaded = _load(path)
    if loaded.spec is None or loaded.spec_kv is None:
        _fail(loaded, as_json)
    return loaded.spec, loaded.spec_kv


@app.command()
def validate(file: FileArg, as_json: JsonOpt = False) -> None:
    """Check a plan (or spec.kv) and list its diagnostics."""
    loaded = _load(file)
    if loaded.spec is None or loaded.spec_kv is None:
        _fail(loaded, as_json)
    report = loaded.report or CompileReport(
        loaded.spec_kv, spec_hash_of_text(loaded.spec_kv), loaded.spec.capabilities, ()
    )
    if as_json:
        _emit_json(report.as_dict())
        return
    for diagnostic in report.diagnostics:
        typer.echo(_diagnostic_line(diagnostic))
    typer.echo(f"ok  {report.spec_hash}  ({loaded.spec.model}, {len(loaded.spec.stages)} stages)")


@app.command()
def describe(file: FileArg, as_json: JsonOpt = False) -> None:
    """Describe the compiled pipeline in words."""
    spec, spec_kv = _require(file, as_json)
    if not as_json:
        typer.echo(describe_text(spec), nl=False)
        return
    _emit_json(
        {
            "name": spec.name,
            "model": str(spec.model),
            "spec_hash": spec_hash_of_text(spec_kv),
            "capabilities": list(spec.capabilities),
            "ingress": [{"id": b.id, "adapter": b.adapter} for b in spec.ingress],
            "egress": [{"id": b.id, "adapter": b.adapter} for b in spec.egress],
            "stages": [
                {"id": s.id, "op": str(s.op), "summary": summarise(s.params)} for s in spec.stages
            ],
            "text": describe_text(spec),
        }
    )


@app.command()
def dot(file: FileArg, as_json: JsonOpt = False) -> None:
    """Print the topology as Graphviz DOT."""
    spec, spec_kv = _require(file, as_json)
    text = to_dot(spec)
    if as_json:
        _emit_json({"spec_hash": spec_hash_of_text(spec_kv), "dot": text})
    else:
        typer.echo(text, nl=False)


@app.command()
def svg(file: FileArg, as_json: JsonOpt = False) -> None:
    """Print an SVG picture of the topology (drawn without Graphviz)."""
    spec, spec_kv = _require(file, as_json)
    text = to_svg(spec)
    if as_json:
        _emit_json({"spec_hash": spec_hash_of_text(spec_kv), "svg": text})
    else:
        typer.echo(text, nl=False)


@app.command()
def diff(
    old: Annotated[str, typer.Argument(help="The old plan or spec.kv.")],
    new: Annotated[str, typer.Argument(help="The new plan or spec.kv.")],
    as_json: JsonOpt = False,
) -> None:
    """Compare two specs: summary of stage and capability changes, then a line diff."""
    old_spec, _ = _require(old, as_json)
    new_spec, _ = _require(new, as_json)
    result = diff_specs(old_spec, new_spec, old_label=old, new_label=new)
    if as_json:
        _emit_json(result.as_dict())
    else:
        typer.echo(result.to_text(), nl=False)


@app.command("hash")
def hash_(file: FileArg, as_json: JsonOpt = False) -> None:
    """Print the spec hash (`sha256:…`) of the compiled plan."""
    spec, spec_kv = _require(file, as_json)
    if as_json:
        _emit_json(
            {
                "spec_hash": spec_hash_of_text(spec_kv),
                "capabilities": list(spec.capabilities),
                "spec_kv": encode_spec(spec),
            }
        )
    else:
        typer.echo(spec_hash_of_text(spec_kv))
