"""URL rules for `http_post`: which URLs are allowed and their normalised form (§6).

Readings of §6 taken here: the URL must be plain ASCII made of RFC 3986 characters
(spell international names in punycode and percent-encode the rest); user information
(`user:pass@`) is refused, since a spec is shown, hashed and approved and must not carry
secrets; an empty port (`host:`) is dropped like a default one and a port must be
1–65535 (leading zeros removed); the loopback names are compared as text after
lowercasing, so `[0:0:0:0:0:0:0:1]` is not `[::1]`. Normalisation is exactly what §6 lists
(lowercase scheme and host, default port removed, fragment removed, empty path → `/`);
the path and query are kept byte for byte.
"""

from __future__ import annotations

import ipaddress
import re

_ALLOWED_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?", re.S)
_REG_NAME = re.compile(r"(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})+")
_DEFAULT_PORTS = {"https": "443", "http": "80"}
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


class InvalidUrlError(ValueError):
    """The URL is not one `http_post` may use; the message says why."""


def normalise_url(url: str) -> str:
    """Check an `http_post` URL and return its normalised form (raises InvalidUrlError)."""
    if not url or _ALLOWED_CHARS.fullmatch(url) is None:
        raise InvalidUrlError("a URL must be non-empty ASCII made of RFC 3986 characters")
    if _BAD_PERCENT.search(url):
        raise InvalidUrlError("a `%` must start a two-digit hex escape")
    match = _URI.fullmatch(url)
    if match is None:
        raise InvalidUrlError("a URL must look like scheme://host/path")
    scheme, authority, path, query = match.groups()
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidUrlError("the scheme must be https (or http to localhost)")
    if "@" in authority:
        raise InvalidUrlError("user information (user:password@) is not allowed in a URL")
    host, port = _split_authority(authority)
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise InvalidUrlError("http:// is allowed only to localhost, 127.0.0.1 or [::1]")
    if port == _DEFAULT_PORTS[scheme]:
        port = ""
    text = f"{scheme}://{host}{':' + port if port else ''}{path or '/'}"
    return text if query is None else f"{text}?{query}"


def _split_authority(authority: str) -> tuple[str, str]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidUrlError("an IPv6 host must be closed with `]`")
        host, rest = authority[: end + 1].lower(), authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidUrlError("unexpected text after the IPv6 host")
        _check_ipv6(host[1:-1])
        return host, _port(rest[1:] if rest else "")
    host, _, port = authority.partition(":")
    host = host.lower()
    if not host or _REG_NAME.fullmatch(host) is None:
        raise InvalidUrlError("the URL has no valid host")
    return host, _port(port)


def _check_ipv6(text: str) -> None:
    if "%" in text:
        raise InvalidUrlError("IPv6 zone identifiers are not allowed")
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        raise InvalidUrlError("the bracketed host is not an IPv6 address") from None


def _port(text: str) -> str:
    if not text:
        return ""
    if not text.isascii() or not text.isdigit():
        raise InvalidUrlError("the port must be a number")
    number = int(text)
    if not 1 <= number <= 65535:
        raise InvalidUrlError("the port must be between 1 and 65535")
    return str(number)
