"""End to end with a real MCP client written elsewhere: the official MCP Python
SDK (`mcp` on PyPI) and its OAuth client provider, driven headlessly against
`target/debug/octogen serve` (issue 9, point 3).

discovery → registration → authorize (portal sign-in over HTTP, consent) →
token → tools/list → each tool on a granted catalog → an ungranted catalog →
token expiry (the server's test clock, and the client's) → transparent refresh →
sign-out → 401.

Run: `cargo build -p octogen && python -m pytest tests/mcp` (with requirements.txt installed).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import anyio
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("OCTOGEN_BIN", ROOT / "target" / "debug" / "octogen"))
FEED = ROOT / "crates" / "octogen-server" / "demo" / "northwind-products.json"
PASSWORD = "correct horse battery staple"
EMAIL = "agent-owner@python.test"
REDIRECT = "http://127.0.0.1:33418/callback"


class Server:
    """`octogen serve` on an ephemeral port with test hooks on, and its CLI."""

    def __init__(self, data_dir: str):
        self.admin_token = "octo_admin_" + secrets.token_urlsafe(32)
        self.log_path = Path(data_dir) / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCTOGEN_")}
        env.update(OCTOGEN_ADMIN_TOKEN=self.admin_token, OCTOGEN_INSECURE_TEST_HOOKS="true", OCTOGEN_LOG_LEVEL="info")
        self.env = env
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.base = self._wait_for_address()

    def _wait_for_address(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.log_path.read_text().splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("message") == "octogen is listening":
                    return "http://" + event["address"]
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the server did not start:\n" + self.log_path.read_text())

    def cli(self, *args: str) -> dict:
        env = dict(self.env, OCTOGEN_SERVER=self.base)
        done = subprocess.run([str(BINARY), *args, "--json"], env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def advance_clock(self, seconds: int) -> None:
        response = httpx2.post(
            self.base + "/_test/clock",
            json={"seconds": seconds},
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        assert response.status_code == 200, response.text

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def server():
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `cargo build -p octogen` first")
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(data_dir)
        try:
            org = server.cli("admin", "org", "create", "--name", "Python Partner", "--type", "catalog_partner")["id"]
            for key in ("northwind", "hidden"):
                server.cli("admin", "catalog", "create", "--key", key, "--name", key.title(),
                           "--source-url", f"https://{key}.example")
            server.cli("admin", "grant", "--org", org, "--catalog", "northwind")
            server.cli("catalog", "import", "--catalog", "northwind", "--format", "shopify",
                       "--currency", "USD", str(FEED))
            server.cli("admin", "user", "create", "--email", EMAIL, "--org", org, "--role", "owner",
                       "--password", PASSWORD)
            yield server
        finally:
            server.stop()


class Browser:
    """The person approving the agent: a portal session over plain HTTP (no redirects followed)."""

    def __init__(self, base: str):
        self.base = base
        self.http = httpx2.Client(base_url=base, follow_redirects=False)

    def form_csrf(self, html: str) -> str:
        match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
        assert match, html
        return match.group(1)

    def post(self, path: str, data: dict) -> httpx2.Response:
        headers = {"Origin": self.base, "Sec-Fetch-Site": "same-origin"}
        return self.http.post(path, data=data, headers=headers)

    def sign_in(self) -> None:
        page = self.http.get("/login")
        response = self.post("/login", {"csrf": self.form_csrf(page.text), "email": EMAIL, "password": PASSWORD})
        assert response.status_code == 303, response.text

    def sign_out(self) -> None:
        page = self.http.get("/keys")
        response = self.post("/logout", {"csrf": self.form_csrf(page.text)})
        assert response.status_code == 303

    def approve(self, authorization_url: str) -> str:
        """Follows the authorization request to the consent screen and allows; returns the redirect back."""
        started = self.http.get(authorization_url)
        assert started.status_code == 303, started.text
        consent = started.headers["location"]
        assert consent.startswith("/oauth2/consent?request="), consent
        page = self.http.get(consent)
        assert page.status_code == 200, page.text
        assert "pytest agent" in page.text
        assert page.headers["x-frame-options"] == "DENY"
        request_id = parse_qs(urlparse(consent).query)["request"][0]
        answer = self.post("/oauth2/consent",
                           {"csrf": self.form_csrf(page.text), "request": request_id, "decision": "allow"})
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]


class MemoryStorage:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Headless:
    """The OAuth provider's redirect and callback handlers, played by `Browser`."""

    def __init__(self, browser: Browser):
        self.browser = browser
        self.authorizations = 0
        self.allowed = True
        self.back: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        self.authorizations += 1
        if not self.allowed:
            raise RuntimeError("re-authorization requested")
        self.back = await anyio.to_thread.run_sync(self.browser.approve, authorization_url)

    async def callback(self) -> AuthorizationCodeResult:
        assert self.back and self.back.startswith(REDIRECT), self.back
        params = parse_qs(urlparse(self.back).query)
        return AuthorizationCodeResult(code=params["code"][0], state=params["state"][0], iss=params["iss"][0])


class Recorder:
    """Every request the SDK sends (an httpx2 event hook), so the test can see the OAuth steps happen."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, request: httpx2.Request) -> None:
        self.requests.append((request.method, request.url.path))

    def paths(self) -> list[str]:
        return [path for _, path in self.requests]


def structured(result) -> dict:
    assert not result.is_error, result
    return result.structured_content


def test_the_python_sdk_connects_calls_refreshes_and_is_refused_after_sign_out(server: Server, monkeypatch):
    anyio.run(run_flow, server, monkeypatch)


async def run_flow(server: Server, monkeypatch) -> None:
    browser = Browser(server.base)
    browser.sign_in()
    headless = Headless(browser)
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=server.base + "/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="pytest agent",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=headless.redirect,
        callback_handler=headless.callback,
    )
    recorder = Recorder()
    async with httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"request": [recorder]}) as http:
        async with Client(streamable_http_client(server.base + "/mcp", http_client=http)) as client:
            # Discovery → registration → authorize → token all happened on the first request.
            paths = recorder.paths()
            for step in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server",
                         "/oauth2/register", "/oauth2/token"):
                assert step in paths, paths
            assert headless.authorizations == 1
            assert storage.client_info.client_id and storage.client_info.client_secret
            first_tokens = storage.tokens
            assert first_tokens.access_token.startswith("octo_at_") and first_tokens.expires_in == 300

            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == ["list_catalogs", "search_products", "lookup_product"]

            catalogs = structured(await client.call_tool("list_catalogs", {}))["catalogs"]
            assert [c["catalog"] for c in catalogs] == ["northwind"]
            assert catalogs[0]["productCount"] == 24

            page = structured(await client.call_tool("search_products",
                                                     {"catalog": "northwind", "query": "hoodie", "limit": 5}))
            assert page["items"], page
            hoodie = page["items"][0]
            assert "hoodie" in hoodie["title"].lower()

            found = structured(await client.call_tool("lookup_product", {"canonical_url": hoodie["productUrl"]}))
            assert found["product"]["uuid"] == hoodie["uuid"] and found["catalogKey"] == "northwind"

            # An ungranted catalog: a normal result carrying the error.
            refused = await client.call_tool("search_products", {"catalog": "hidden"})
            assert refused.is_error and refused.structured_content["error"] == "catalog_not_granted"
            bad_limit = await client.call_tool("search_products", {"catalog": "northwind", "limit": 500})
            assert bad_limit.is_error and bad_limit.structured_content["error"] == "invalid_limit"

            # Six minutes pass, on the server's clock and on the client's.
            server.advance_clock(360)
            expired = httpx2.post(server.base + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                  headers={"Authorization": f"Bearer {first_tokens.access_token}",
                                           "Accept": "application/json, text/event-stream",
                                           "MCP-Protocol-Version": "2025-11-25"})
            assert expired.status_code == 401
            assert "invalid_token" in expired.headers["www-authenticate"]
            real_time = time.time
            monkeypatch.setattr("mcp.client.auth.oauth2.time.time", lambda: real_time() + 360)

            # The SDK refreshes by itself (no new authorization), with a rotated refresh token.
            requests_before = len(recorder.requests)
            catalogs = structured(await client.call_tool("list_catalogs", {}))["catalogs"]
            assert [c["catalog"] for c in catalogs] == ["northwind"]
            assert headless.authorizations == 1, "refreshed, not re-authorized"
            assert "/oauth2/token" in recorder.paths()[requests_before:]
            assert storage.tokens.access_token != first_tokens.access_token
            assert storage.tokens.refresh_token != first_tokens.refresh_token

    # Sign-out ends every token of the grant: the server answers 401.
    browser.sign_out()
    headless.allowed = False
    refused = httpx2.post(server.base + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"Authorization": f"Bearer {storage.tokens.access_token}",
                                   "Accept": "application/json, text/event-stream",
                                   "MCP-Protocol-Version": "2025-11-25"})
    assert refused.status_code == 401
    assert f'resource_metadata="{server.base}/.well-known/oauth-protected-resource/mcp"' \
        in refused.headers["www-authenticate"]
    info = storage.client_info
    form = {"grant_type": "refresh_token", "refresh_token": storage.tokens.refresh_token}
    if info.token_endpoint_auth_method == "client_secret_basic":
        refresh = httpx2.post(server.base + "/oauth2/token", data=form, auth=(info.client_id, info.client_secret))
    else:
        form.update(client_id=info.client_id, client_secret=info.client_secret)
        refresh = httpx2.post(server.base + "/oauth2/token", data=form)
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    # The SDK meets the same 401 and has to authorize again (which the signed-out person does not).
    with pytest.raises(BaseException):
        async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
            async with Client(streamable_http_client(server.base + "/mcp", http_client=http)) as client:
                await client.call_tool("list_catalogs", {})
    assert headless.authorizations == 2
