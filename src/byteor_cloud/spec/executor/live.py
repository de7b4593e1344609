"""The real side-effect handler: `http_post` through an allow-list, `exec` only if allowed.

This is the only module of the compiler package that performs I/O, and only when a caller
(the agent, a governed replay) hands it to the executor. Decisions: `executed` (2xx reply,
or exit status 0), `failed` (other status, transport error, timeout, non-zero exit, the
program cannot start) and `denied` (not on the allow-list — nothing is attempted).

Allow-lists: an `http_post` URL is allowed when it equals a listed URL after
normalisation, or when a listed URL ends with `/` and is a prefix of it; an `exec` program
is allowed when it is listed exactly. Redirects are not followed (they could leave the
allow-list). Programs run without a shell, with the record's canonical JSON on stdin, a
timeout, and an empty environment unless one is given.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable, Mapping
from types import TracebackType

import httpx

from byteor_cloud.spec.executor.effects import DENIED, EXECUTED, FAILED, SideEffect
from byteor_cloud.spec.urls import normalise_url


class LiveHandler:
    """Performs allow-listed side effects for real."""

    def __init__(
        self,
        *,
        http_allow: Iterable[str] = (),
        exec_allow: Iterable[str] = (),
        http_timeout_s: float = 10.0,
        exec_timeout_s: float = 30.0,
        client: httpx.Client | None = None,
        exec_env: Mapping[str, str] | None = None,
    ) -> None:
        self._http_allow = tuple(normalise_url(url) for url in http_allow)
        self._exec_allow = frozenset(exec_allow)
        self._http_timeout = http_timeout_s
        self._exec_timeout = exec_timeout_s
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(follow_redirects=False)
        self._exec_env = dict(exec_env or {})

    def __enter__(self) -> LiveHandler:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this handler created it."""
        if self._owns_client:
            self._client.close()

    def http_allowed(self, url: str) -> bool:
        """Whether `url` (normalised) is on the allow-list."""
        return any(
            url == item or (item.endswith("/") and url.startswith(item))
            for item in self._http_allow
        )

    def perform(self, effect: SideEffect) -> str:
        """Perform one effect if allowed; the audit decision."""
        if effect.kind == "http_post":
            return self._post(effect) if self.http_allowed(effect.target) else DENIED
        if effect.kind == "exec":
            return self._exec(effect) if effect.target in self._exec_allow else DENIED
        return DENIED

    def _post(self, effect: SideEffect) -> str:
        headers = {
            "content-type": "application/json",
            "idempotency-key": "sha256:" + hashlib.sha256(effect.body).hexdigest(),
        }
        try:
            response = self._client.post(
                effect.target,
                content=effect.body,
                headers=headers,
                timeout=self._http_timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError:
            return FAILED
        return EXECUTED if response.is_success else FAILED

    def _exec(self, effect: SideEffect) -> str:
        try:
            completed = subprocess.run(  # noqa: S603 - allow-listed program, no shell
                [effect.target, *effect.args],
                input=effect.body,
                capture_output=True,
                timeout=self._exec_timeout,
                env=self._exec_env,
                check=False,
                shell=False,
            )
        except (OSError, subprocess.SubprocessError):
            return FAILED
        return EXECUTED if completed.returncode == 0 else FAILED
