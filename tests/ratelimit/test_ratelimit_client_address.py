"""The client address believes `X-Forwarded-For` only as far as trusted proxies wrote it."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.requests import Request

from byteor_cloud.api.client_address import client_address
from byteor_cloud.config import Settings

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


def request_from(peer: str | None, *forwarded_for: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
            "client": (peer, 4711) if peer is not None else None,
        }
    )


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    request = request_from("203.0.113.7", "198.51.100.1")

    assert client_address(request, ()) == "203.0.113.7"


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    request = request_from("203.0.113.7", "198.51.100.1, 10.0.0.5")

    assert client_address(request, PROXIES) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client() -> None:
    request = request_from("10.0.0.1", "198.51.100.1")

    assert client_address(request, PROXIES) == "198.51.100.1"


def test_addresses_a_client_prepended_are_not_believed() -> None:
    # The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the real peer.
    request = request_from("10.0.0.1", "1.2.3.4, 198.51.100.1")

    assert client_address(request, PROXIES) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    request = request_from("10.0.0.1", "1.2.3.4, 198.51.100.1, 10.0.0.3", "10.0.0.2")

    assert client_address(request, PROXIES) == "198.51.100.1"


def test_a_trusted_peer_without_the_header_is_the_client() -> None:
    assert client_address(request_from("10.0.0.1"), PROXIES) == "10.0.0.1"


def test_when_every_hop_is_trusted_the_farthest_one_is_the_client() -> None:
    request = request_from("10.0.0.1", "10.0.0.3, 10.0.0.2")

    assert client_address(request, PROXIES) == "10.0.0.3"


def test_a_hop_that_is_not_an_address_ends_the_walk() -> None:
    request = request_from("10.0.0.1", "198.51.100.1, unknown, 10.0.0.2")

    assert client_address(request, PROXIES) == "10.0.0.2"


@pytest.mark.parametrize(
    ("hop", "client"),
    [
        ("198.51.100.1:8080", "198.51.100.1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8:0:0::1", "2001:db8::1"),
    ],
)
def test_ports_are_dropped_and_addresses_normalised(hop: str, client: str) -> None:
    assert client_address(request_from("fd00::1", hop), PROXIES) == client


def test_an_ipv4_mapped_peer_matches_ipv4_proxies() -> None:
    request = request_from("::ffff:10.0.0.1", "198.51.100.1")

    assert client_address(request, PROXIES) == "198.51.100.1"


def test_a_connection_without_a_peer_is_unknown() -> None:
    assert client_address(request_from(None, "198.51.100.1"), PROXIES) == "unknown"


def test_it_takes_the_trusted_proxies_setting() -> None:
    settings = Settings(_env_file=None, trusted_proxies="10.0.0.0/8, fd00::/8")  # type: ignore[call-arg]
    request = request_from("10.1.2.3", "198.51.100.1")

    assert client_address(request, settings.trusted_proxies) == "198.51.100.1"
