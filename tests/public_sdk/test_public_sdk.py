"""The public `octogen-ai-sdk` 0.10.0 from PyPI against this server (issue 10).

Only `base_url` changes: an organization pinned to API version 2026-10-01 is
served the shapes this SDK's generated models expect. The same organization,
asking for 2026-05-28 with the `Octogen-Version` header, gets the SPEC shapes.

Run: `pytest tests/public_sdk` with `target/debug/octogen` built (or
OCTOGEN_BIN pointing at a binary), in a virtualenv holding requirements.txt.
"""

import asyncio
import json
import os
import pathlib
import secrets
import subprocess
import tempfile
import time

import httpx
import pytest
from octogen_ai_sdk import OctogenClient
from octogen_ai_sdk.errors import OctogenNotFoundError

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("OCTOGEN_BIN", str(ROOT / "target" / "debug" / "octogen"))
FEED = ROOT / "crates" / "octogen-server" / "demo" / "northwind-products.json"
HOODIE = "https://northwind.example/products/trail-hoodie"


class Server:
    """A real `octogen serve` on an ephemeral port, driven through its own CLI."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.token = "octo_admin_" + secrets.token_urlsafe(32)
        log_path = pathlib.Path(self.dir.name) / "server.log"
        self.log = open(log_path, "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCTOGEN_")}
        env["OCTOGEN_ADMIN_TOKEN"] = self.token
        self.process = subprocess.Popen(
            [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.dir.name],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        self.base = "http://" + self._wait_for_address(log_path)
        self.env = {**env, "OCTOGEN_SERVER": self.base}

    def _wait_for_address(self, log_path):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in log_path.read_text().splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("message") == "octogen is listening":
                    return event["address"]
            time.sleep(0.05)
        raise RuntimeError("the server did not start:\n" + log_path.read_text())

    def cli(self, *args):
        result = subprocess.run([BINARY, *args], env=self.env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"octogen {' '.join(args)}: {result.stderr}"
        return result.stdout

    def cli_json(self, *args):
        return json.loads(self.cli(*args, "--json"))

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
        self.dir.cleanup()


@pytest.fixture(scope="module")
def partner():
    """A catalog partner pinned to 2026-10-01 with the sample catalog; yields (server, org id, key)."""
    server = Server()
    try:
        org = server.cli_json("admin", "org", "create", "--name", "Public SDK Partner", "--type", "catalog_partner")["id"]
        server.cli("admin", "org", "set-api-version", org, "2026-10-01")
        server.cli("admin", "catalog", "create", "--key", "northwind", "--name", "Northwind Outfitters",
                   "--source-url", "https://northwind.example")
        run = server.cli_json("catalog", "import", "--catalog", "northwind", "--format", "shopify",
                              "--currency", "USD", str(FEED))
        assert run["status"] == "succeeded", run
        server.cli("admin", "grant", "--org", org, "--catalog", "northwind")
        key = server.cli_json("keys", "create", "--org", org, "--name", "public sdk")["key"]
        yield server, org, key
    finally:
        server.stop()


def client(server, key):
    return OctogenClient(api_key=key, base_url=server.base + "/v1")


def test_get_me(partner):
    server, org, key = partner

    async def scenario():
        async with client(server, key) as octogen:
            return await octogen.get_me()

    me = asyncio.run(scenario())
    assert me.principal == "api_key"
    assert me.organization.id == org
    assert me.organization.type == "catalog_partner"
    assert me.key.id == key[10:42]
    assert me.rate_limit.limit == 600
    assert me.rate_limit.remaining < 600


def test_search_with_facets_price_bounds_and_pagination_to_the_last_page(partner):
    server, _, key = partner
    facets = [{"name": "color_family", "values": ["Black"]}]

    async def scenario():
        async with client(server, key) as octogen:
            everything = await octogen.search_products(facets=facets, price_min=20, price_max=150, limit=100)
            pages, cursor = [], None
            while True:
                page = await octogen.search_products(
                    facets=facets, price_min=20, price_max=150, limit=2, cursor=cursor
                )
                pages.append(page)
                cursor = page.next_cursor
                if cursor is None:
                    return everything, pages

    everything, pages = asyncio.run(scenario())
    assert len(everything.items) >= 4
    assert everything.next_cursor is None
    paged = [item.uuid for page in pages for item in page.items]
    assert paged == [item.uuid for item in everything.items], "pages concatenate to the full result"
    assert len(pages) == (len(everything.items) + 1) // 2
    for item in everything.items:
        assert 20 <= item.current_price <= 150
        assert item.primary_image is not None and item.primary_image.url == item.image_url
        assert item.images[0].url == item.image_url and item.images[0].cdn_url is None
        assert item.catalog_key == "northwind" and item.catalog_display_name == "Northwind Outfitters"
        assert "Black" in (item.colors or []) or item.colors
    query = pages[0].effective_query
    assert query.understood is False
    assert [(facet.name, facet.values) for facet in query.facets] == [("color_family", ["Black"])]
    assert (query.price_min, query.price_max) == (20, 150)
    assert pages[0].request_id


def test_lookup_product(partner):
    server, _, key = partner

    async def scenario():
        async with client(server, key) as octogen:
            found = await octogen.lookup_product(HOODIE + "?utm_source=sdk")
            with pytest.raises(OctogenNotFoundError):
                await octogen.lookup_product("https://northwind.example/products/nope")
            return found

    found = asyncio.run(scenario())
    assert found.source == "indexed"
    assert found.normalized_url == HOODIE
    assert found.catalog_key == "northwind"
    assert found.product.title == "Trail Fleece Hoodie"
    assert found.product.primary_image.width == 1200
    assert found.product.enrichment.gender == "male"


def test_the_same_organization_can_ask_for_the_spec_shapes(partner):
    server, _, key = partner
    headers = {"Authorization": f"Bearer {key}", "Octogen-Version": "2026-05-28"}
    search = httpx.post(server.base + "/v1/products/search", json={"q": "hoodie"}, headers=headers)
    assert search.status_code == 200
    assert search.headers["octogen-version"] == "2026-05-28"
    page = search.json()
    assert "effectiveQuery" not in page
    for item in page["items"]:
        assert all(isinstance(image, str) for image in item["images"]), item["images"]
        assert "primaryImage" not in item
    lookup = httpx.post(server.base + "/v1/products/lookup", json={"url": HOODIE}, headers=headers)
    assert all(isinstance(image, str) for image in lookup.json()["product"]["images"])
    pinned = httpx.post(server.base + "/v1/products/search", json={"q": "hoodie"},
                        headers={"Authorization": f"Bearer {key}"})
    assert pinned.headers["octogen-version"] == "2026-10-01"
