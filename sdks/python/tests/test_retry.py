"""Retries against a scripted peer on loopback (the real server cannot fail on cue):
429 with Retry-After, 5xx, and what is never retried."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Optional, Tuple

import pytest

import octogen_ai_sdk as sdk

pytestmark = pytest.mark.anyio

KEY = "octo_live_" + "0" * 32 + "_retry-test-key-not-a-secret"
CATALOGS = b'[{"catalog":"northwind","displayName":"Northwind","sourceBaseUrl":null,"productCount":1,"lastIndexedAt":null,"addedLater":{"x":1}}]'


class Peer:
    def __init__(self, answers: List[Tuple[int, Optional[str]]]) -> None:
        self.answers = answers
        self.calls = 0
        self.headers: List[dict] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                status, retry_after = peer.answers[min(peer.calls, len(peer.answers) - 1)]
                peer.calls += 1
                peer.headers.append(dict(self.headers))
                body = CATALOGS if status == 200 else (
                    b'{"detail":"rate_limit_exceeded"}' if status == 429 else b'{"detail":"Service unavailable"}')
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                if retry_after is not None:
                    self.send_header("retry-after", retry_after)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def peer() -> Iterator["type[Peer]"]:
    started: List[Peer] = []

    def make(answers: List[Tuple[int, Optional[str]]]) -> Peer:
        p = Peer(answers)
        started.append(p)
        return p

    yield make  # type: ignore[misc]
    for p in started:
        p.close()


async def test_a_429_is_retried_after_retry_after(peer) -> None:
    p = peer([(429, "1"), (200, None)])
    started = time.monotonic()
    async with sdk.OctogenClient(api_key=KEY, base_url=p.base) as client:
        catalogs = await client.list_catalogs()
    assert catalogs[0].catalog == "northwind"
    assert catalogs[0].model_extra == {"addedLater": {"x": 1}}, "unknown fields are kept"
    assert p.calls == 2
    assert time.monotonic() - started >= 1.0


async def test_a_long_retry_after_is_raised_at_once(peer) -> None:
    p = peer([(429, "120")])
    async with sdk.OctogenClient(api_key=KEY, base_url=p.base) as client:
        with pytest.raises(sdk.OctogenRateLimitError) as raised:
            await client.list_catalogs()
    assert raised.value.retry_after == 120
    assert raised.value.detail == "rate_limit_exceeded"
    assert p.calls == 1


async def test_server_errors_are_retried_then_raised(peer) -> None:
    p = peer([(503, None), (502, None), (200, None)])
    async with sdk.OctogenClient(api_key=KEY, base_url=p.base, max_retries=2) as client:
        assert await client.list_catalogs()
    assert p.calls == 3
    p = peer([(500, None)])
    async with sdk.OctogenClient(api_key=KEY, base_url=p.base, max_retries=3) as client:
        with pytest.raises(sdk.OctogenServerError):
            await client.list_catalogs()
    assert p.calls == 4
    p = peer([(503, None)])
    async with sdk.OctogenClient(api_key=KEY, base_url=p.base, max_retries=0) as client:
        with pytest.raises(sdk.OctogenServerError):
            await client.list_catalogs()
    assert p.calls == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(peer, status: int) -> None:
    p = peer([(status, None), (200, None)])
    async with sdk.OctogenClient(api_key=KEY, base_url=p.base) as client:
        with pytest.raises(sdk.OctogenAPIError) as raised:
            await client.list_catalogs()
    assert raised.value.status_code == status
    assert p.calls == 1


async def test_requests_carry_the_key_and_the_version(peer) -> None:
    p = peer([(200, None)])
    async with sdk.OctogenClient(api_key=KEY, base_url=p.base) as client:
        await client.list_catalogs()
    headers = {k.lower(): v for k, v in p.headers[0].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["octogen-version"] == sdk.API_VERSION
    assert headers["user-agent"].startswith("octogen-ai-sdk-python/")
