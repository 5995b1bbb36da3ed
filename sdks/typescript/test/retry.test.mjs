// Retries against a scripted peer on loopback (the real server cannot fail on
// cue): 429 with Retry-After, 5xx, timeouts, and what is never retried.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";

import {
  API_VERSION,
  OctogenAPIError,
  OctogenClient,
  OctogenConnectionError,
  OctogenRateLimitError,
  OctogenServerError,
} from "../dist/index.js";

const KEY = "octo_live_" + "0".repeat(32) + "_retry-test-key-not-a-secret";
const CATALOGS = JSON.stringify([
  { catalog: "northwind", displayName: "Northwind", sourceBaseUrl: null, productCount: 1, lastIndexedAt: null, addedLater: 1 },
]);

/** A peer answering each request with the next scripted [status, retryAfter]; the last repeats. */
async function peer(answers) {
  const state = { calls: 0, headers: [] };
  const server = createServer((request, response) => {
    const [status, retryAfter] = answers[Math.min(state.calls, answers.length - 1)];
    state.calls += 1;
    state.headers.push(request.headers);
    const body = status === 200 ? CATALOGS : JSON.stringify({ detail: status === 429 ? "rate_limit_exceeded" : "Service unavailable" });
    response.writeHead(status, { "content-type": "application/json", ...(retryAfter ? { "retry-after": retryAfter } : {}) });
    response.end(body);
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  state.base = `http://127.0.0.1:${server.address().port}`;
  state.close = () => new Promise((done) => server.close(done));
  return state;
}

test("a 429 is retried after Retry-After", async () => {
  const p = await peer([[429, "1"], [200]]);
  const started = Date.now();
  const catalogs = await new OctogenClient({ apiKey: KEY, baseUrl: p.base }).listCatalogs();
  assert.equal(catalogs[0].catalog, "northwind");
  assert.equal(catalogs[0].addedLater, 1, "unknown fields pass through");
  assert.equal(p.calls, 2);
  assert.ok(Date.now() - started >= 1000);
  await p.close();
});

test("a Retry-After beyond the bound is thrown at once", async () => {
  const p = await peer([[429, "120"]]);
  const error = await new OctogenClient({ apiKey: KEY, baseUrl: p.base }).listCatalogs().catch((e) => e);
  assert.ok(error instanceof OctogenRateLimitError);
  assert.equal(error.retryAfter, 120);
  assert.equal(error.detail, "rate_limit_exceeded");
  assert.equal(p.calls, 1);
  await p.close();
});

test("server errors are retried up to maxRetries", async () => {
  let p = await peer([[503], [502], [200]]);
  assert.ok(await new OctogenClient({ apiKey: KEY, baseUrl: p.base, maxRetries: 2 }).listCatalogs());
  assert.equal(p.calls, 3);
  await p.close();
  p = await peer([[500]]);
  const error = await new OctogenClient({ apiKey: KEY, baseUrl: p.base, maxRetries: 3 }).listCatalogs().catch((e) => e);
  assert.ok(error instanceof OctogenServerError);
  assert.equal(p.calls, 4);
  await p.close();
  p = await peer([[503]]);
  await new OctogenClient({ apiKey: KEY, baseUrl: p.base, maxRetries: 0 }).listCatalogs().catch(() => {});
  assert.equal(p.calls, 1);
  await p.close();
});

test("client errors are not retried", async () => {
  for (const status of [400, 401, 403, 404, 422]) {
    const p = await peer([[status], [200]]);
    const error = await new OctogenClient({ apiKey: KEY, baseUrl: p.base }).listCatalogs().catch((e) => e);
    assert.ok(error instanceof OctogenAPIError);
    assert.equal(error.status, status);
    assert.equal(p.calls, 1, String(status));
    await p.close();
  }
});

test("requests carry the key, the version and a user agent", async () => {
  const p = await peer([[200]]);
  await new OctogenClient({ apiKey: KEY, baseUrl: p.base }).listCatalogs();
  assert.equal(p.headers[0].authorization, `Bearer ${KEY}`);
  assert.equal(p.headers[0]["octogen-version"], API_VERSION);
  assert.match(p.headers[0]["user-agent"], /^octogen-ai-sdk-typescript\//);
  await p.close();
});

test("a timeout is a retried connection error", async () => {
  const sockets = [];
  const { createServer: createTcp } = await import("node:net");
  const silent = createTcp((socket) => sockets.push(socket));
  await new Promise((done) => silent.listen(0, "127.0.0.1", done));
  const client = new OctogenClient({ apiKey: KEY, baseUrl: `http://127.0.0.1:${silent.address().port}`, timeoutMs: 200, maxRetries: 1 });
  const error = await client.listCatalogs().catch((e) => e);
  assert.ok(error instanceof OctogenConnectionError, String(error));
  assert.match(error.message, /timed out/);
  assert.equal(sockets.length, 2, "retried once");
  for (const socket of sockets) socket.destroy();
  await new Promise((done) => silent.close(done));
});
