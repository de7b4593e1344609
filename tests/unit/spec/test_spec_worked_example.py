"""The §6 worked example compiles to exactly the bytes and hash printed in PRODUCT.md."""

from __future__ import annotations

import hashlib
from pathlib import Path

from byteor_cloud.spec import compile_plan, decode_spec, encode_spec

FIXTURES = Path(__file__).parent / "fixtures"

EXPECTED = """\
spec.v=1
spec.model=single_ring
spec.name=orders-enrich
single_ring.egress.0.adapter=file
single_ring.egress.0.config={"path":"/var/lib/byteor/out.jsonl"}
single_ring.egress.0.id=out
single_ring.ingress.0.adapter=file
single_ring.ingress.0.config={"path":"/var/lib/byteor/in.jsonl"}
single_ring.ingress.0.id=in
single_ring.ordering=strict
single_ring.producer=single
single_ring.scheduling=dedicated
single_ring.shards=1
single_ring.stages.0.id=only-eu
single_ring.stages.0.op=filter
single_ring.stages.0.params.field=region
single_ring.stages.0.params.op=eq
single_ring.stages.0.params.value="eu"
single_ring.stages.1.depends_on.0=0
single_ring.stages.1.id=redact
single_ring.stages.1.op=dataguard
single_ring.stages.1.params.rules.0=card:mask=4:4:*
single_ring.stages.1.params.rules.1=email:hash
single_ring.stages.2.depends_on.0=1
single_ring.stages.2.id=notify
single_ring.stages.2.op=http_post
single_ring.stages.2.params.url=https://hooks.example.com/orders
"""
EXPECTED_HASH = "sha256:2e76c147ab02a157d47f53a80b007020db70b2bf2eeb16900e75ed0124e66657"


def test_worked_example_compiles_to_the_printed_bytes_and_hash() -> None:
    report = compile_plan((FIXTURES / "worked_example.plan.json").read_bytes())

    assert report.diagnostics == ()
    assert report.spec_kv == EXPECTED
    assert report.spec_hash == EXPECTED_HASH
    assert report.capabilities == ("http_post:https://hooks.example.com/orders",)


def test_printed_hash_is_the_sha256_of_the_printed_bytes() -> None:
    assert "sha256:" + hashlib.sha256(EXPECTED.encode()).hexdigest() == EXPECTED_HASH


def test_worked_example_round_trips_through_decode() -> None:
    assert encode_spec(decode_spec(EXPECTED)) == EXPECTED


def test_compile_report_has_the_wire_shape() -> None:
    report = compile_plan((FIXTURES / "worked_example.plan.json").read_text())

    assert report.as_dict() == {
        "spec_kv": EXPECTED,
        "spec_hash": EXPECTED_HASH,
        "capabilities": ["http_post:https://hooks.example.com/orders"],
        "diagnostics": [],
    }
