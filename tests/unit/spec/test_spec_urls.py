"""URL rules and normalisation for http_post (§6)."""

from __future__ import annotations

import pytest

from byteor_cloud.spec import InvalidUrlError, normalise_url


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://hooks.example.com/orders", "https://hooks.example.com/orders"),
        ("HTTPS://Hooks.Example.COM/Orders", "https://hooks.example.com/Orders"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:0443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com:/a", "https://example.com/a"),
        ("https://example.com/a#frag", "https://example.com/a"),
        ("https://example.com#", "https://example.com/"),
        ("https://example.com?q=1#f", "https://example.com/?q=1"),
        ("https://example.com/?", "https://example.com/?"),
        ("https://example.com/a%2Fb", "https://example.com/a%2Fb"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
        ("http://localhost", "http://localhost/"),
        ("http://LOCALHOST:80/x", "http://localhost/x"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://[::1]/x", "http://[::1]/x"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"),
    ],
)
def test_allowed_urls_are_normalised(url: str, normalised: str) -> None:
    assert normalise_url(url) == normalised
    assert normalise_url(normalised) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/",
        "http://example.com/",
        "http://[0:0:0:0:0:0:0:1]/",
        "http://127.0.0.2/",
        "https://",
        "https:///path",
        "https:/example.com",
        "example.com/path",
        "https://user:pass@example.com/",
        "https://example.com:99999/",
        "https://example.com:0/",
        "https://example.com:x/",
        "https://exa mple.com/",
        "https://bücher.example/",
        "https://example.com/a b",
        "https://example.com/%zz",
        "https://[fe80::1%25eth0]/",
        "https://[not-ipv6]/",
        "https://[::1/",
        "https://example.com\\evil.com/",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidUrlError):
        normalise_url(url)
