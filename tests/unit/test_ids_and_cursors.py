"""Ids are time-ordered and unique; cursors round-trip and refuse tampering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from byteor_cloud.core.errors import MalformedRequest
from byteor_cloud.core.ids import is_id, new_id
from byteor_cloud.core.pagination import PageRequest, decode_cursor, encode_cursor


def test_ids_are_unique_and_increasing_within_a_process() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(is_id(value) for value in ids)


@given(st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()), min_size=1, max_size=3))
def test_cursors_round_trip(values: list[str | int | None]) -> None:
    assert decode_cursor(encode_cursor(values), arity=len(values)) == values


@pytest.mark.parametrize("cursor", ["%%%", "bm90LWpzb24", encode_cursor(["a"]), "x" * 2000])
def test_a_bad_cursor_is_a_400_not_a_crash(cursor: str) -> None:
    with pytest.raises(MalformedRequest) as caught:
        decode_cursor(cursor, arity=2)
    assert caught.value.code == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, 201, -5])
def test_limits_outside_1_to_200_are_refused(limit: int) -> None:
    with pytest.raises(MalformedRequest):
        PageRequest(limit=limit)
