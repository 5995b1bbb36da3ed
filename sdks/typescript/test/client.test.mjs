// The SDK against a real server: every call, paging, errors, and the key.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { createServer } from "node:net";

import {
  FacetName,
  MissingAPIKeyError,
  OctogenAPIError,
  OctogenAuthenticationError,
  OctogenClient,
  OctogenConnectionError,
  OctogenError,
  OctogenForbiddenError,
  OctogenNotFoundError,
  OctogenValidationError,
  searchBody,
} from "../dist/index.js";
import { startServer, withoutAmbientKeys } from "./server.mjs";

let server;
let client;
before(async () => {
  server = await startServer();
  client = new OctogenClient({ apiKey: server.keys.partner, baseUrl: server.base });
});
after(async () => {
  await server?.stop();
});

test("listCatalogs returns the granted catalogs", async () => {
  const catalogs = await client.listCatalogs();
  assert.equal(catalogs.length, 1);
  const [catalog] = catalogs;
  assert.equal(catalog.catalog, "northwind");
  assert.equal(catalog.displayName, "Northwind Outfitters");
  assert.equal(catalog.sourceBaseUrl, "https://northwind.example");
  assert.equal(catalog.productCount, 24);
  assert.match(catalog.lastIndexedAt, /Z$/);
  const empty = new OctogenClient({ apiKey: server.keys.empty, baseUrl: server.base });
  assert.deepEqual(await empty.listCatalogs(), []);
});

test("searchProducts maps priceMin/priceMax and facets to the wire", async () => {
  const params = {
    q: "black hoodie",
    facets: [
      { name: FacetName.ColorFamily, values: ["Black"] },
      { name: FacetName.Gender, values: ["male"] },
    ],
    priceMin: 50,
    priceMax: 300,
    limit: 10,
  };
  assert.deepEqual(searchBody(params), {
    q: "black hoodie",
    facets: [
      { name: "color_family", values: ["Black"] },
      { name: "gender", values: ["male"] },
    ],
    price_min: 50,
    price_max: 300,
    limit: 10,
  });
  const page = await client.searchProducts(params);
  const [first] = page.items;
  assert.equal(first.title, "Trail Fleece Hoodie");
  assert.equal(first.brand.name, "Northwind");
  assert.deepEqual([first.currentPrice, first.originalPrice, first.currency], [64, 80, "USD"]);
  assert.equal(first.imageUrl, first.images[0]);
  assert.ok(page.items.every((item) => item.currentPrice >= 50 && item.currentPrice <= 300));
  assert.equal(page.nextCursor, null);
  assert.equal(typeof page.requestId, "string");

  // The record form of facets means the same.
  const same = await client.searchProducts({ ...params, facets: { color_family: "Black", [FacetName.Gender]: ["male"] } });
  assert.deepEqual(same.items.map((i) => i.uuid), page.items.map((i) => i.uuid));

  const restricted = await client.searchProducts({ q: "jacket", catalog: "northwind", limit: 3 });
  assert.equal(restricted.items.length, 3);
  assert.ok(restricted.items.every((item) => item.catalogKey === "northwind"));
  assert.equal((await client.searchProducts({ catalogs: ["northwind"], limit: 1 })).items.length, 1);
});

test("pages and products follow nextCursor to the end", async () => {
  const first = await client.searchProducts({ limit: 5 });
  assert.equal(first.items.length, 5);
  const second = await client.searchProducts({ limit: 5, cursor: first.nextCursor });
  assert.ok(!second.items.some((item) => first.items.some((seen) => seen.uuid === item.uuid)));

  const uuids = [];
  for await (const item of client.products({ limit: 5 })) uuids.push(item.uuid);
  assert.equal(uuids.length, 24);
  assert.equal(new Set(uuids).size, 24);
  const sizes = [];
  for await (const page of client.pages({ limit: 5 })) sizes.push(page.items.length);
  assert.deepEqual(sizes, [5, 5, 5, 5, 4]);
});

test("lookupProduct returns the full product", async () => {
  const found = await client.lookupProduct("https://www.northwind.example/products/trail-hoodie/?utm_source=x");
  assert.equal(found.catalogKey, "northwind");
  assert.equal(found.catalogDisplayName, "Northwind Outfitters");
  assert.equal(found.product.title, "Trail Fleece Hoodie");
  assert.equal(found.product.productUrl, "https://northwind.example/products/trail-hoodie");
  assert.ok(found.product.variants.length > 0);
  assert.equal(found.product.enrichment.gender, "male");
  assert.ok(found.product.enrichment.color_family.includes("Black"));
  assert.equal(found.normalizedUrl, "https://northwind.example/products/trail-hoodie");
});

test("errors carry status, detail and the raw response", async () => {
  const notFound = await client.lookupProduct("https://northwind.example/products/nope").catch((e) => e);
  assert.ok(notFound instanceof OctogenNotFoundError);
  assert.ok(notFound instanceof OctogenAPIError && notFound instanceof OctogenError && notFound instanceof Error);
  assert.equal(notFound.name, "OctogenNotFoundError");
  assert.equal(notFound.status, 404);
  assert.equal(notFound.statusCode, 404);
  assert.equal(notFound.detail, "product_not_found");
  assert.equal(notFound.body, '{"detail":"product_not_found"}');
  assert.equal(notFound.response.status, 404);
  assert.ok(notFound.requestId);

  const invalid = await client.searchProducts({ limit: 500 }).catch((e) => e);
  assert.ok(invalid instanceof OctogenValidationError);
  assert.deepEqual(invalid.detail[0].loc, ["body", "limit"]);
  assert.match(invalid.message, /body\.limit/);

  const notUrl = await client.lookupProduct("not a url").catch((e) => e);
  assert.ok(notUrl instanceof OctogenValidationError);
  assert.equal(notUrl.detail, "invalid_product_url");

  assert.ok((await client.searchProducts({ catalog: "nope" }).catch((e) => e)) instanceof OctogenNotFoundError);

  const merchant = new OctogenClient({ apiKey: server.keys.merchant, baseUrl: server.base });
  const forbidden = await merchant.listCatalogs().catch((e) => e);
  assert.ok(forbidden instanceof OctogenForbiddenError);
  assert.equal(forbidden.detail, "api_key_org_type_forbidden");
});

test("the key comes from the environment: OCTO_API_KEY, then OCTOGEN_PLATFORM_API_KEY", async () => {
  await withoutAmbientKeys(async () => {
    assert.throws(() => new OctogenClient({ baseUrl: server.base }), MissingAPIKeyError);
    assert.throws(() => new OctogenClient({ apiKey: " ", baseUrl: server.base }), MissingAPIKeyError);
    assert.match(new MissingAPIKeyError().message, /OCTO_API_KEY/);

    process.env.OCTO_BASE_URL = `${server.base}/v1/`;
    process.env.OCTOGEN_PLATFORM_API_KEY = server.keys.partner;
    const fallback = new OctogenClient();
    assert.equal(fallback.baseUrl, server.base);
    assert.equal((await fallback.listCatalogs()).length, 1);

    process.env.OCTO_API_KEY = server.keys.empty;
    assert.deepEqual(await new OctogenClient().listCatalogs(), [], "OCTO_API_KEY wins");
    assert.equal((await new OctogenClient({ apiKey: server.keys.partner }).listCatalogs()).length, 1, "explicit wins");
  });
});

test("the key never shows", async () => {
  const secret = server.keys.wrong_secret.split("_").at(-1);
  const wrong = new OctogenClient({ apiKey: server.keys.wrong_secret, baseUrl: server.base });
  for (const text of [String(wrong), inspect(wrong), JSON.stringify(wrong)]) {
    assert.ok(!text.includes(secret), text);
  }
  const error = await wrong.listCatalogs().catch((e) => e);
  assert.ok(error instanceof OctogenAuthenticationError);
  assert.equal(error.detail, "Invalid API key");
  assert.ok(!error.message.includes(secret) && !inspect(error).includes(secret));
});

test("a revoked key is refused on the next call", async () => {
  const key = server.cli("keys", "create", "--org", server.orgIds.partner, "--name", "revoke-me");
  const revocable = new OctogenClient({ apiKey: key.key, baseUrl: server.base });
  assert.equal((await revocable.listCatalogs()).length, 1);
  server.cli("keys", "revoke", key.id);
  assert.ok((await revocable.listCatalogs().catch((e) => e)) instanceof OctogenAuthenticationError);
});

test("an unreachable server is a connection error", async () => {
  const port = await new Promise((resolvePort) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
  const offline = new OctogenClient({
    apiKey: "octo_live_" + "0".repeat(32) + "_not-a-real-secret",
    baseUrl: `http://127.0.0.1:${port}`,
    maxRetries: 1,
  });
  const error = await offline.listCatalogs().catch((e) => e);
  assert.ok(error instanceof OctogenConnectionError, String(error));
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.ok(!error.message.includes("not-a-real-secret"));
});
