"""Turning a domain Page into the API's list envelope."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from byteor_cloud.api.schemas import PageOut
from byteor_cloud.core.pagination import Page

T = TypeVar("T")
U = TypeVar("U")


def page_out(page: Page[T], render: Callable[[T], U]) -> PageOut[U]:
    return PageOut[U](items=[render(item) for item in page.items], next_cursor=page.next_cursor)
