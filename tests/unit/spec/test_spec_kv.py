"""spec.kv encoding and decoding: key order, typed values, canonical JSON, strict decode."""

from __future__ import annotations

import pytest

from byteor_cloud.spec import (
    Boundary,
    FilterOp,
    FilterParams,
    IdentityParams,
    JsonValue,
    PipelineSpecV1,
    SingleRingSpec,
    SpecDecodeError,
    SpecEncodeError,
    Stage,
    canonical_json,
    compile_plan,
    decode_spec,
    encode_spec,
    key_order,
    spec_hash,
)
from byteor_cloud.spec.jsonvalues import format_double


def test_keys_sort_segment_by_segment_numbers_first_as_numbers() -> None:
    keys = ["a.b", "a.10", "a", "a.2", "a.B", "a.01", "a.0", "a.b.c", "a.ba", "a_", "a-"]

    assert sorted(keys, key=key_order) == [
        "a",
        "a.0",
        "a.2",
        "a.10",
        "a.01",
        "a.B",
        "a.b",
        "a.b.c",
        "a.ba",
        "a-",
        "a_",
    ]


def test_more_than_ten_list_items_sort_numerically(ring_plan: dict[str, object]) -> None:
    ring_plan["stages"] = [
        {"id": "g", "op": "dataguard", "params": {"rules": [f"f{i}:drop" for i in range(12)]}}
    ]

    lines = compile_plan(ring_plan).spec_kv.splitlines()  # type: ignore[union-attr]
    rules = [line for line in lines if ".rules." in line]

    assert rules[2] == "single_ring.stages.0.params.rules.2=f2:drop"
    assert rules[10] == "single_ring.stages.0.params.rules.10=f10:drop"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.5, "0.5"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (123.456, "123.456"),
        (1.5e300, "1.5e+300"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (2.0**60, "1152921504606847000"),
        (-2.5, "-2.5"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (12345678901234567890, "12345678901234567890"),
        (True, "true"),
        (None, "null"),
    ],
)
def test_canonical_json_numbers(value: object, text: str) -> None:
    assert JsonValue.of(value).text == text


def test_format_double_matches_ecmascript_exponent_thresholds() -> None:
    assert format_double(1e21) == "1e+21"
    assert format_double(999999999999999900000.0) == "999999999999999900000"
    assert format_double(0.000001) == "0.000001"
    assert format_double(0.0000001) == "1e-7"


def test_canonical_json_sorts_keys_by_code_point_and_escapes_like_json() -> None:
    value = {"b": 1, "a": [True, None], "é": 'x\ny"\\\u0001\u007f\u2028', "😀": 0, "ｚ": 1}

    assert (
        canonical_json(value)
        == '{"a":[true,null],"b":1,"é":"x\\ny\\"\\\\\\u0001\u007f\u2028","ｚ":1,"😀":0}'
    )


def test_string_one_and_number_one_are_different_values() -> None:
    assert JsonValue.of("1") != JsonValue.of(1)
    assert JsonValue.of(True) != JsonValue.of(1)
    assert JsonValue.of(1.0) == JsonValue.of(1)


def _spec(**overrides: object) -> PipelineSpecV1:
    fields: dict[str, object] = {
        "name": "p",
        "ingress": (Boundary("in", "memory"),),
        "egress": (Boundary("out", "memory"),),
        "body": SingleRingSpec(stages=(Stage("s", IdentityParams()),)),
    }
    fields.update(overrides)
    return PipelineSpecV1(**fields)  # type: ignore[arg-type]


def test_encode_refuses_control_characters_in_bare_values() -> None:
    with pytest.raises(SpecEncodeError):
        encode_spec(_spec(name="bad\rname"))


def test_json_values_may_carry_del_and_c1_characters() -> None:
    stage = Stage("s", FilterParams("f", FilterOp.eq, JsonValue.of("\u007f\u0085")))
    spec = _spec(body=SingleRingSpec(stages=(stage,)))

    assert decode_spec(encode_spec(spec)) == spec


def test_model_is_canonical_by_construction() -> None:
    one = _spec(ingress=(Boundary("b", "x"), Boundary("a", "x")))
    two = _spec(ingress=(Boundary("a", "x"), Boundary("b", "x")))

    assert one == two
    assert spec_hash(one) == spec_hash(two)


CANONICAL = compile_plan(
    {
        "plan": 2,
        "name": "p",
        "target": "single_ring",
        "ingress": [{"id": "in", "adapter": "memory", "config": {"a": 1}}],
        "egress": [{"id": "out", "adapter": "memory"}],
        "stages": [{"id": "s", "op": "filter", "params": {"field": "f", "op": "eq", "value": 1}}],
    }
).spec_kv
assert CANONICAL is not None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t[:-1], "newline"),
        (lambda t: t.replace("spec.v=1", "spec.v=2"), "version"),
        (lambda t: t.replace("spec.model=single_ring", "spec.model=ring"), "spec.model"),
        (lambda t: t.replace("spec.name=p\n", ""), "starts with"),
        (lambda t: t + "single_ring.extra=1\n", "unknown keys"),
        (lambda t: t + "single_ring.shards=1\n", "twice"),
        (lambda t: t.replace("single_ring.shards=1\n", ""), "missing key"),
        (lambda t: t.replace("single_ring.shards=1", "single_ring.shards=01"), "integer"),
        (lambda t: t.replace('config={"a":1}', 'config={"a": 1}'), "canonical"),
        (lambda t: t.replace('config={"a":1}', "config=[1]"), "object"),
        (lambda t: t.replace('config={"a":1}', "config={"), "JSON"),
        (lambda t: t.replace("params.op=eq", "params.op=like"), "unknown value"),
        (
            lambda t: (
                t.replace("single_ring.ordering=strict\n", "") + "single_ring.ordering=strict\n"
            ),
            "canonical",
        ),
        (lambda t: t + "single_ring.stages.2.id=x\n", "without gaps"),
        (lambda t: t + "bad line\n", "key=value"),
        (lambda t: t + "a..b=1\n", "dotted key"),
        (lambda t: t.replace("spec.name=p", "spec.name=p\r"), "control"),
        (lambda t: t.replace("producer=single", "producer=mpmc"), "producer"),
    ],
)
def test_decode_refuses_what_is_not_canonical_spec_kv(mutate: object, message: str) -> None:
    text = mutate(CANONICAL)  # type: ignore[operator]

    with pytest.raises(SpecDecodeError, match=message) as caught:
        decode_spec(text)
    assert caught.value.code == "invalid_spec"


def test_lenient_decode_accepts_any_line_order_and_json_spelling() -> None:
    assert CANONICAL is not None
    header, body = CANONICAL.split("\n", 3)[:3], CANONICAL.split("\n", 3)[3]
    shuffled = "\n".join(header) + "\n" + "\n".join(reversed(body.splitlines())) + "\n"
    shuffled = shuffled.replace('config={"a":1}', 'config={ "a" : 1.0 }')

    spec = decode_spec(shuffled, strict=False)

    assert encode_spec(spec) == CANONICAL


def test_decode_accepts_bytes_and_refuses_bad_utf8() -> None:
    assert CANONICAL is not None
    assert encode_spec(decode_spec(CANONICAL.encode())) == CANONICAL
    with pytest.raises(SpecDecodeError):
        decode_spec(b"spec.v=1\n\xff\n")
