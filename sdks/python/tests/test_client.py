"""The SDK against a real server: every call, typed models, paging, errors, the key."""

from __future__ import annotations

import pytest

import octogen_ai_sdk as sdk
from octogen_ai_sdk import FacetName, OctogenClient
from conftest import Server

pytestmark = pytest.mark.anyio


async def test_list_catalogs(server: Server) -> None:
    async with OctogenClient(api_key=server.keys["partner"], base_url=server.base) as client:
        catalogs = await client.list_catalogs()
    assert len(catalogs) == 1
    catalog = catalogs[0]
    assert isinstance(catalog, sdk.CatalogSummary)
    assert (catalog.catalog, catalog.display_name) == ("northwind", "Northwind Outfitters")
    assert catalog.source_base_url == "https://northwind.example"
    assert catalog.product_count == 24
    assert catalog.last_indexed_at is not None and catalog.last_indexed_at.tzinfo is not None
    async with OctogenClient(api_key=server.keys["empty"], base_url=server.base) as client:
        assert await client.list_catalogs() == []


async def test_search_with_facets_and_prices(server: Server) -> None:
    async with OctogenClient(api_key=server.keys["partner"], base_url=server.base) as client:
        page = await client.search_products(
            "black hoodie",
            facets={FacetName.COLOR_FAMILY: ["Black"], "gender": "male"},
            price_min=50,
            price_max=300,
            limit=10,
        )
        first = page.items[0]
        assert isinstance(first, sdk.ProductListItem)
        assert first.title == "Trail Fleece Hoodie"
        assert first.brand is not None and first.brand.name == "Northwind"
        assert (first.current_price, first.original_price, first.currency) == (64.0, 80.0, "USD")
        assert first.image_url == first.images[0]
        assert all(50 <= (item.current_price or 0) <= 300 for item in page.items)
        assert page.next_cursor is None and page.request_id

        # The list form of facets, and a Facet model, mean the same.
        same = await client.search_products(
            "black hoodie",
            facets=[sdk.Facet(name="color_family", values=["Black"]), {"name": "gender", "values": ["male"]}],
            price_min=50,
            price_max=300,
            limit=10,
        )
        assert [i.uuid for i in same.items] == [i.uuid for i in page.items]

        restricted = await client.search_products("jacket", catalog="northwind", limit=3)
        assert {item.catalog_key for item in restricted.items} == {"northwind"}
        assert len(restricted.items) == 3
        several = await client.search_products(catalogs=["northwind"], limit=1)
        assert len(several.items) == 1


async def test_paging_follows_cursors_to_the_end(server: Server) -> None:
    async with OctogenClient(api_key=server.keys["partner"], base_url=server.base) as client:
        first = await client.search_products(limit=5)
        assert len(first.items) == 5 and first.next_cursor
        second = await client.search_products(limit=5, cursor=first.next_cursor)
        assert not {i.uuid for i in first.items} & {i.uuid for i in second.items}

        uuids = [item.uuid async for item in client.iter_products(limit=5)]
        assert len(uuids) == 24 == len(set(uuids))
        sizes = [len(page.items) async for page in client.iter_pages(limit=5)]
        assert sizes == [5, 5, 5, 5, 4]
        hoodies = [item.title async for item in client.iter_products("hoodie")]
        assert len(hoodies) == 3


async def test_lookup(server: Server) -> None:
    async with OctogenClient(api_key=server.keys["partner"], base_url=server.base) as client:
        found = await client.lookup_product("https://www.northwind.example/products/trail-hoodie/?utm_source=x")
    assert isinstance(found, sdk.LookupResult)
    assert (found.catalog_key, found.catalog_display_name) == ("northwind", "Northwind Outfitters")
    product = found.product
    assert isinstance(product, sdk.ProductView)
    assert product.title == "Trail Fleece Hoodie"
    assert product.product_url == "https://northwind.example/products/trail-hoodie"
    assert product.variants and isinstance(product.variants[0], sdk.Variant)
    assert product.enrichment is not None and product.enrichment.gender == "male"
    assert "Black" in product.enrichment.color_family
    assert found.normalized_url == "https://northwind.example/products/trail-hoodie"
    # Back to the wire shape: camelCase, enrichment snake_case.
    wire = found.model_dump(by_alias=True, mode="json")
    assert wire["product"]["productUrl"] == product.product_url
    assert wire["product"]["enrichment"]["color_family"] == product.enrichment.color_family


async def test_errors_carry_status_detail_and_raw_response(server: Server) -> None:
    async with OctogenClient(api_key=server.keys["partner"], base_url=server.base) as client:
        with pytest.raises(sdk.OctogenNotFoundError) as raised:
            await client.lookup_product("https://northwind.example/products/nope")
        error = raised.value
        assert isinstance(error, sdk.OctogenAPIError) and isinstance(error, sdk.OctogenError)
        assert (error.status_code, error.detail) == (404, "product_not_found")
        assert error.body == '{"detail":"product_not_found"}'
        assert error.response.status_code == 404 and error.request_id

        with pytest.raises(sdk.OctogenValidationError) as raised:
            await client.search_products(limit=500)
        assert raised.value.detail[0]["loc"] == ["body", "limit"]
        assert "body.limit" in str(raised.value)

        with pytest.raises(sdk.OctogenValidationError) as raised:
            await client.lookup_product("not a url")
        assert raised.value.detail == "invalid_product_url"

        with pytest.raises(sdk.OctogenNotFoundError):
            await client.search_products(catalog="nope")

    async with OctogenClient(api_key=server.keys["merchant"], base_url=server.base) as client:
        with pytest.raises(sdk.OctogenForbiddenError) as raised:
            await client.list_catalogs()
        assert raised.value.detail == "api_key_org_type_forbidden"


async def test_the_key_comes_from_the_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(sdk.MissingAPIKeyError) as raised:
        OctogenClient(base_url=server.base)
    assert "OCTO_API_KEY" in str(raised.value)
    with pytest.raises(sdk.MissingAPIKeyError):
        OctogenClient(api_key="  ", base_url=server.base)

    monkeypatch.setenv("OCTO_BASE_URL", server.base + "/v1/")
    monkeypatch.setenv("OCTOGEN_PLATFORM_API_KEY", server.keys["partner"])
    async with OctogenClient() as client:
        assert client.base_url == server.base
        assert len(await client.list_catalogs()) == 1, "the fallback variable works"

    monkeypatch.setenv("OCTO_API_KEY", server.keys["empty"])
    async with OctogenClient() as client:
        assert await client.list_catalogs() == [], "OCTO_API_KEY wins over the fallback"

    async with OctogenClient(api_key=server.keys["partner"]) as client:
        assert len(await client.list_catalogs()) == 1, "an explicit key wins over both"


async def test_the_key_never_shows(server: Server) -> None:
    wrong = server.wrong_secret
    secret = wrong.rsplit("_", 1)[-1]
    client = OctogenClient(api_key=wrong, base_url=server.base)
    assert secret not in repr(client) and "[redacted]" in repr(client)
    with pytest.raises(sdk.OctogenAuthenticationError) as raised:
        await client.list_catalogs()
    await client.aclose()
    assert raised.value.detail == "Invalid API key"
    assert secret not in str(raised.value) and secret not in repr(raised.value)


async def test_a_revoked_key_is_refused_on_the_next_call(server: Server) -> None:
    key = server.mint_key(server.org_ids["partner"])
    async with OctogenClient(api_key=key, base_url=server.base) as client:
        assert await client.list_catalogs()
        key_id = next(k["id"] for k in server.cli("keys", "list", "--org", server.org_ids["partner"]) if k["id"] in key)
        server.cli("keys", "revoke", key_id)
        with pytest.raises(sdk.OctogenAuthenticationError):
            await client.list_catalogs()


async def test_an_unreachable_server_is_a_connection_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with OctogenClient(api_key="octo_live_" + "0" * 32 + "_not-a-real-secret", base_url=f"http://127.0.0.1:{port}",
                             max_retries=1) as client:
        with pytest.raises(sdk.OctogenConnectionError) as raised:
            await client.list_catalogs()
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "not-a-real-secret" not in str(raised.value)


def test_the_package_is_typed() -> None:
    from importlib.resources import files

    assert files("octogen_ai_sdk").joinpath("py.typed").is_file()
