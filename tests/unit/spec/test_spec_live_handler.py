"""The real side-effect handler: allow-lists, timeouts, no shell, and its decisions."""

from __future__ import annotations

import sys

import httpx
import pytest

from byteor_cloud.spec import InvalidUrlError, compile_plan
from byteor_cloud.spec.executor import LiveHandler, SideEffect, run_spec


class _Recorder:
    """A fake HTTP server: records requests and answers with a fixed status."""

    def __init__(self, status: int = 200, error: Exception | None = None) -> None:
        self.status = status
        self.error = error
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status)


def _handler(server: _Recorder, **kwargs: object) -> LiveHandler:
    client = httpx.Client(transport=httpx.MockTransport(server))
    return LiveHandler(client=client, **kwargs)  # type: ignore[arg-type]


def _post(url: str, body: bytes = b'{"a":1}') -> SideEffect:
    return SideEffect("http_post", "notify", url, body)


def test_allowed_post_is_sent_with_body_and_idempotency_key() -> None:
    server = _Recorder()
    handler = _handler(server, http_allow=["HTTPS://Hooks.Example.com:443/orders"])

    decision = handler.perform(_post("https://hooks.example.com/orders"))

    assert decision == "executed"
    (request,) = server.requests
    assert request.method == "POST"
    assert str(request.url) == "https://hooks.example.com/orders"
    assert request.content == b'{"a":1}'
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == (
        "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    )


def test_post_outside_the_allow_list_is_denied_and_not_sent() -> None:
    server = _Recorder()
    handler = _handler(server, http_allow=["https://hooks.example.com/orders"])

    assert handler.perform(_post("https://hooks.example.com/orders/2")) == "denied"
    assert handler.perform(_post("https://evil.example.com/orders")) == "denied"
    assert server.requests == []


def test_allow_list_entry_ending_in_slash_is_a_prefix() -> None:
    server = _Recorder()
    handler = _handler(server, http_allow=["https://hooks.example.com/v1/"])

    assert handler.perform(_post("https://hooks.example.com/v1/a/b")) == "executed"
    assert handler.perform(_post("https://hooks.example.com/v2/a")) == "denied"


@pytest.mark.parametrize(
    "server",
    [_Recorder(status=500), _Recorder(status=302), _Recorder(error=httpx.ConnectTimeout("slow"))],
)
def test_failed_posts_are_reported_as_failed(server: _Recorder) -> None:
    handler = _handler(server, http_allow=["https://hooks.example.com/"])

    assert handler.perform(_post("https://hooks.example.com/")) == "failed"


def test_allow_list_entries_must_be_valid_urls() -> None:
    with pytest.raises(InvalidUrlError):
        LiveHandler(http_allow=["http://example.com/"])


def _exec(program: str, *args: str) -> SideEffect:
    return SideEffect("exec", "run", program, b'{"a":1}', args)


def test_exec_is_denied_unless_the_program_is_allow_listed() -> None:
    handler = LiveHandler()

    assert handler.perform(_exec(sys.executable, "-c", "pass")) == "denied"


@pytest.mark.slow
def test_allow_listed_program_runs_without_a_shell_with_the_record_on_stdin() -> None:
    check = "import sys; sys.exit(0 if sys.stdin.read() == '{\"a\":1}' else 3)"
    handler = LiveHandler(exec_allow=[sys.executable])

    assert handler.perform(_exec(sys.executable, "-c", check)) == "executed"
    assert handler.perform(_exec(sys.executable, "-c", "raise SystemExit(4)")) == "failed"
    assert handler.perform(_exec(sys.executable, "-c", "print('$(touch /tmp/x)')")) == "executed"


@pytest.mark.slow
def test_exec_timeout_and_missing_programs_fail() -> None:
    handler = LiveHandler(exec_allow=[sys.executable, "/no/such/program"], exec_timeout_s=0.3)

    assert handler.perform(_exec(sys.executable, "-c", "import time; time.sleep(5)")) == "failed"
    assert handler.perform(_exec("/no/such/program")) == "failed"


def test_executor_with_the_live_handler_records_real_decisions() -> None:
    report = compile_plan(
        {
            "plan": 2,
            "name": "live",
            "target": "single_ring",
            "ingress": [{"id": "in", "adapter": "memory"}],
            "egress": [{"id": "out", "adapter": "memory"}],
            "stages": [
                {"id": "post", "op": "http_post", "params": {"url": "https://hooks.example.com/x"}},
                {"id": "run", "op": "exec", "params": {"program": "rm"}, "depends_on": ["post"]},
            ],
        }
    )
    assert report.spec is not None
    server = _Recorder()

    with _handler(server, http_allow=["https://hooks.example.com/x"]) as handler:
        result = run_spec(report.spec, [{"n": 1}], handler=handler)

    assert [(a.action, a.target, a.decision) for a in result.actions] == [
        ("http_post", "https://hooks.example.com/x", "executed"),
        ("exec", "rm", "denied"),
    ]
    assert [r.content for r in server.requests] == [b'{"n":1}']
