// Every shared contract case (sdks/contract/*.json), raw and through the SDK.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import * as sdk from "../dist/index.js";
import { contractDir, startServer, withoutAmbientKeys } from "./server.mjs";

const cases = readdirSync(contractDir)
  .filter((name) => name.endsWith(".json"))
  .sort()
  .flatMap((name) => JSON.parse(readFileSync(join(contractDir, name), "utf8")).cases);

const errorClasses = {
  MissingApiKey: sdk.MissingAPIKeyError,
  Authentication: sdk.OctogenAuthenticationError,
  Forbidden: sdk.OctogenForbiddenError,
  NotFound: sdk.OctogenNotFoundError,
  Validation: sdk.OctogenValidationError,
  RateLimited: sdk.OctogenRateLimitError,
};

const MISSING = Symbol("missing");

export function resolvePath(root, path) {
  let values = [root];
  if (path === "") return values;
  for (const step of path.split(".")) {
    const next = [];
    for (const value of values) {
      if (step === "*" && Array.isArray(value)) next.push(...value);
      else if (step === "*" && value !== null && typeof value === "object") next.push(...Object.values(value));
      else if (Array.isArray(value)) next.push(/^\d+$/.test(step) && Number(step) < value.length ? value[Number(step)] : MISSING);
      else if (value !== null && typeof value === "object" && value !== MISSING) next.push(step in value ? value[step] : MISSING);
      else next.push(MISSING);
    }
    values = next;
  }
  return values;
}

function typeName(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return { boolean: "boolean", number: "number", string: "string", object: "object" }[typeof value] ?? "unknown";
}

function equal(a, b) {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && equal(a[k], b[k]));
  }
  return a === b;
}

export function check(root, rule) {
  const { path } = rule;
  const values = resolvePath(root, path);
  if (path.includes("*") && values.length === 0) throw new Error(`${path}: matched nothing`);
  if (values.some((v) => v === MISSING)) throw new Error(`${path}: missing`);
  for (const [name, expected] of Object.entries(rule)) {
    if (name === "path") continue;
    if (name === "distinct") {
      const texts = values.map((v) => JSON.stringify(v));
      if (new Set(texts).size !== texts.length) throw new Error(`${path}: not distinct`);
      continue;
    }
    if (name === "containsAll") {
      const pool = values.length === 1 && Array.isArray(values[0]) && !path.includes("*") ? values[0] : values;
      for (const want of expected) {
        if (!pool.some((have) => equal(have, want))) throw new Error(`${path}: no ${JSON.stringify(want)}`);
      }
      continue;
    }
    for (const value of values) {
      let ok;
      switch (name) {
        case "equals": ok = equal(value, expected); break;
        case "type": ok = typeName(value) === expected; break;
        case "gte": ok = typeof value === "number" && value >= expected; break;
        case "lte": ok = typeof value === "number" && value <= expected; break;
        case "length": ok = value !== null && typeof value === "object" || typeof value === "string" ? (Array.isArray(value) || typeof value === "string" ? value.length : Object.keys(value).length) === expected : false; break;
        case "minLength": ok = value !== null && typeof value === "object" || typeof value === "string" ? (Array.isArray(value) || typeof value === "string" ? value.length : Object.keys(value).length) >= expected : false; break;
        case "hasKeys": ok = value !== null && typeof value === "object" && !Array.isArray(value) && expected.every((k) => k in value); break;
        default: throw new Error(`${path}: unknown rule ${name}`);
      }
      if (!ok) throw new Error(`${path}: ${name} ${JSON.stringify(expected)} failed on ${JSON.stringify(value).slice(0, 300)}`);
    }
  }
}

function checkErrorBody(expect, body) {
  if ("detail" in expect) assert.deepEqual(body.detail, expect.detail);
  if ("detailLocs" in expect) assert.deepEqual(body.detail.map((issue) => issue.loc), expect.detailLocs);
}

/** Maps the case's wire-named args to the SDK's camelCase parameters. */
function searchParams(args) {
  const params = {};
  for (const [name, value] of Object.entries(args ?? {})) {
    params[{ price_min: "priceMin", price_max: "priceMax" }[name] ?? name] = value;
  }
  return params;
}

async function call(client, { op, args, all }) {
  if (op === "listCatalogs") return client.listCatalogs();
  if (op === "lookupProduct") return client.lookupProduct(args.url);
  if (op === "searchProducts") {
    if (!all) return client.searchProducts(searchParams(args));
    const items = [];
    let pages = 0;
    for await (const page of client.pages(searchParams(args))) {
      pages += 1;
      items.push(...page.items);
    }
    return { items, pages };
  }
  throw new Error(`unknown op ${op}`);
}

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const keyFor = (name) => (name === "none" ? undefined : server.keys[name]);

test("the contract has cases, each named once", () => {
  assert.ok(cases.length >= 20);
  assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
});

test("the checks catch what they should", () => {
  const page = { items: [{ uuid: "a", price: 5 }, { uuid: "b", price: 7 }], nextCursor: null };
  check(page, { path: "items.*.price", gte: 5, lte: 7 });
  for (const bad of [
    { path: "items", length: 3 },
    { path: "items.*.price", gte: 6 },
    { path: "missing", type: "null" },
    { path: "items.0.price", bogus: 1 },
    { path: "items.*.uuid", containsAll: ["c"] },
  ]) {
    assert.throws(() => check(page, bad), undefined, JSON.stringify(bad));
  }
  assert.throws(() => check({ items: [] }, { path: "items.*.uuid", equals: "a" }));
});

for (const contractCase of cases) {
  test(`raw: ${contractCase.name}`, async () => {
    const { request, expect } = contractCase;
    const key = keyFor(contractCase.key);
    const headers = { "Content-Type": "application/json" };
    if (key !== undefined) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(server.base + request.path, {
      method: request.method,
      headers,
      ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
    });
    const body = await response.json();
    assert.equal(response.status, expect.status, JSON.stringify(body));
    if (response.status >= 400) checkErrorBody(expect, body);
    else if (!contractCase.call.all) for (const rule of expect.checks ?? []) check(body, rule);
  });

  test(`sdk: ${contractCase.name}`, async () => {
    const { expect } = contractCase;
    const key = keyFor(contractCase.key);
    await withoutAmbientKeys(async () => {
      const run = async () => call(new sdk.OctogenClient({ apiKey: key, baseUrl: server.base }), contractCase.call);
      if (expect.error) {
        const errorClass = errorClasses[expect.error];
        assert.ok(errorClass, `unknown error class ${expect.error}`);
        const error = await run().then(
          (value) => assert.fail(`expected ${expect.error}, got ${JSON.stringify(value).slice(0, 200)}`),
          (thrown) => thrown,
        );
        assert.ok(error instanceof errorClass, `expected ${expect.error}, got ${error}`);
        if (error instanceof sdk.OctogenAPIError) {
          assert.equal(error.status, expect.status);
          checkErrorBody(expect, JSON.parse(error.body));
          assert.deepEqual(error.detail, JSON.parse(error.body).detail);
        }
        return;
      }
      const result = await run();
      // The SDK's result as JSON: what a caller would serialize.
      const json = JSON.parse(JSON.stringify(result));
      for (const rule of expect.checks ?? []) check(json, rule);
    });
  });
}
