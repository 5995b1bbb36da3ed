// The partner portal in a real browser (Debian's chromium, driven by playwright-core).
//
// Boots `target/debug/octogen serve` on an ephemeral port with a fresh data
// directory, creates organizations, a catalog (with a small feed imported) and
// users through the real `octogen` CLI, then walks the flows as people
// would. Finally it visits every portal page, partner and operator, at
// 1280×800 and at 390×844 and checks that the page never scrolls sideways and
// that every button is fully visible. Every page visited is saved as
// target/portal-screenshots/<page>-<width>.png.
//
// Run: cargo build -p octogen && (cd tests/browser && npm ci && npm test)
// Env: OCTOGEN_BIN (default ../../target/debug/octogen), CHROMIUM (default /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = process.env.OCTOGEN_BIN ?? join(root, "target/debug/octogen");
const shots = join(root, "target/portal-screenshots");
const PASSWORD = "correct horse battery staple";
const DESKTOP = { width: 1280, height: 800 };
// A narrow window (not isMobile: that lets the layout viewport grow with the content).
const PHONE = { width: 390, height: 844 };

let server;
let base;
let browser;
let dataDir;
const adminToken = `octo_admin_${randomBytes(32).toString("base64url")}`;
const ids = {};

/** `octogen …` against the test server; returns parsed JSON output. */
function cli(...args) {
  const out = execFileSync(bin, [...args, "--json"], {
    env: { ...process.env, OCTOGEN_SERVER: base, OCTOGEN_ADMIN_TOKEN: adminToken },
    encoding: "utf8",
  });
  return JSON.parse(out);
}

/** Starts the server and resolves with its base URL once it logs its address. */
function startServer() {
  dataDir = mkdtempSync(join(tmpdir(), "octogen-browser-"));
  server = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"], {
    env: { ...process.env, OCTOGEN_ADMIN_TOKEN: adminToken },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolvePromise, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${buffered}`)), 30_000);
    const read = (chunk) => {
      buffered += chunk;
      for (const line of buffered.split("\n")) {
        try {
          const event = JSON.parse(line);
          if (event.message === "octogen is listening") {
            clearTimeout(timer);
            resolvePromise(`http://${event.address}`);
          }
        } catch {
          // not a complete JSON line yet
        }
      }
    };
    server.stdout.on("data", read);
    server.stderr.on("data", read);
    server.on("exit", (code) => reject(new Error(`server exited (${code}):\n${buffered}`)));
  });
}

/** A small Shopify feed, so the catalog pages show products and a finished run. */
function writeFeed() {
  const product = (n, title) => ({
    id: 1000 + n,
    title,
    handle: title.toLowerCase().replaceAll(" ", "-"),
    body_html: `<p>${title}, built to last.</p>`,
    vendor: "Northwind",
    product_type: "Outdoor",
    tags: "camping, outdoor",
    variants: [{ id: 5000 + n, title: "Default", price: `${49 + n}.00`, sku: `NW-${n}`, available: true }],
    images: [{ src: `https://northwind.example/images/${n}.jpg` }],
  });
  const file = join(dataDir, "northwind.json");
  const titles = ["Trail Tent", "Down Sleeping Bag", "Camp Stove", "Headlamp"];
  writeFileSync(file, JSON.stringify({ products: titles.map((title, n) => product(n, title)) }));
  return file;
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}-${page.viewportSize().width}.png`), fullPage: true });
}

/**
 * What every portal page must get right at any width: the page itself never
 * scrolls sideways (wide content scrolls in place or stacks), and every
 * button is entirely on screen, not cut off by the window or a scroll box.
 */
async function assertLayout(page, label) {
  const problems = await page.evaluate(() => {
    const found = [];
    const overflow = document.documentElement.scrollWidth - window.innerWidth;
    if (overflow > 1) found.push(`the page scrolls sideways by ${overflow}px`);
    for (const element of document.querySelectorAll("a.button, button")) {
      if (element.getClientRects().length === 0 || getComputedStyle(element).visibility === "hidden") continue;
      const box = element.getBoundingClientRect();
      const name = element.textContent.trim();
      if (box.left < -0.5 || box.right > window.innerWidth + 0.5) {
        found.push(`"${name}" reaches outside the window (${Math.round(box.left)}..${Math.round(box.right)})`);
      }
      for (let parent = element.parentElement; parent; parent = parent.parentElement) {
        if (getComputedStyle(parent).overflowX === "visible") continue;
        const clip = parent.getBoundingClientRect();
        if (box.left < clip.left - 0.5 || box.right > clip.right + 0.5) {
          found.push(`"${name}" is cut off by <${parent.tagName.toLowerCase()} class="${parent.className}">`);
        }
      }
    }
    return found;
  });
  assert.deepEqual(problems, [], `${label} at ${page.viewportSize().width}px`);
}

/** Saves the page's screenshot (first, so a failure has one to look at) and checks its layout. */
async function review(page, name) {
  await shot(page, name);
  await assertLayout(page, name);
}

/** A fresh browser context (its own cookies) signed in as `email`. */
async function signIn(email, options = {}) {
  const context = await browser.newContext({ viewport: DESKTOP, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => !url.pathname.startsWith("/login"));
  return page;
}

async function listCatalogs(key) {
  return fetch(`${base}/v1/catalogs`, { headers: { Authorization: `Bearer ${key}` } });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  base = await startServer();
  ids.acme = cli("admin", "org", "create", "--name", "Acme Search", "--type", "catalog_partner").id;
  ids.beta = cli("admin", "org", "create", "--name", "Beta Labs", "--type", "catalog_partner").id;
  cli("admin", "catalog", "create", "--key", "northwind", "--name", "Northwind Outfitters", "--source-url", "https://northwind.example");
  cli("catalog", "import", "--catalog", "northwind", "--format", "shopify", "--currency", "USD", writeFeed());
  cli("admin", "user", "create", "--operator", "--email", "op@octogen.test", "--password", PASSWORD);
  ids.owner = cli("admin", "user", "create", "--email", "owner@acme.test", "--org", ids.acme, "--role", "owner", "--password", PASSWORD).id;
  cli("admin", "user", "create", "--email", "member@acme.test", "--org", ids.acme, "--role", "member", "--password", PASSWORD);
  const multi = cli("admin", "user", "create", "--email", "multi@acme.test", "--org", ids.acme, "--role", "admin", "--password", PASSWORD);
  cli("admin", "user", "set-role", "--user", multi.id, "--org", ids.beta, "--role", "owner");
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("a partner owner creates a key, uses it, deactivates it", async () => {
  const login = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  await login.goto(`${base}/login`);
  await login.getByLabel("Email").fill("owner@acme.test");
  await login.getByLabel("Password").fill("not the password, but long");
  await login.getByRole("button", { name: "Sign in" }).click();
  await assert.doesNotReject(login.getByText("Incorrect email or password.").waitFor());
  await review(login, "login-failed");

  const page = await signIn("owner@acme.test");
  assert.equal(new URL(page.url()).pathname, "/keys");
  await assert.doesNotReject(page.getByText("No keys yet").waitFor());
  await review(page, "keys-empty");

  await page.getByLabel("Name").fill("production backend");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.getByText("It will not be shown again").waitFor();
  const key = await page.locator("#new-key").inputValue();
  assert.match(key, /^octo_live_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
  assert.ok(await page.getByRole("button", { name: "Copy" }).isVisible(), "the copy button appears with JavaScript");

  const ok = await listCatalogs(key);
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), []);

  await page.getByRole("link", { name: "I have copied the key" }).click();
  const row = page.locator(`tr[data-key-id="${key.slice(10, 42)}"]`);
  assert.ok(!(await page.content()).includes(key), "the list never shows the secret");
  assert.match(await row.innerText(), new RegExp(`octo_live_…${key.slice(38, 42)}`));
  assert.match(await row.innerText(), /by owner@acme\.test/);
  await row.getByRole("link", { name: "Rotate" }).click();
  await page.goBack();
  await row.getByRole("link", { name: "Deactivate" }).click();
  await page.getByText("the next request that uses this key fails with 401").waitFor();
  await page.getByRole("button", { name: "Deactivate key" }).click();
  await page.getByText("The key was deactivated").waitFor();
  await review(page, "key-deactivated");

  const refused = await listCatalogs(key);
  assert.equal(refused.status, 401);

  await page.getByRole("link", { name: "Hide deactivated keys" }).click();
  await page.getByText("Every key is deactivated").waitFor();
  assert.equal(await row.count(), 0, "hidden");
  await page.getByRole("link", { name: "Show deactivated keys (1)" }).click();
  await row.waitFor();
});

test("reloading or going back to the new key's page creates no key and shows the key once", async () => {
  const page = await signIn("owner@acme.test");
  const keysBefore = cli("keys", "list", "--org", ids.acme).length;
  await page.getByLabel("Name").fill("reload me");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.getByText("It will not be shown again").waitFor();
  const shownAt = page.url();
  assert.match(new URL(shownAt).pathname, /^\/keys\/issued\//);
  const key = await page.locator("#new-key").inputValue();
  assert.ok(!shownAt.includes(key.slice(10)), "the key is not in the URL");

  await page.reload();
  await page.getByRole("heading", { name: "This key was already shown" }).waitFor();
  assert.equal(await page.locator("#new-key").count(), 0);
  assert.ok(!(await page.content()).includes(key), "not shown a second time");
  await review(page, "key-already-shown");

  await page.goto(`${base}/keys`);
  await page.goBack();
  assert.equal(page.url(), shownAt);
  await page.getByRole("heading", { name: "This key was already shown" }).waitFor();
  assert.ok(!(await page.content()).includes(key), "the back button does not bring it back");
  await page.goBack();
  await page.getByRole("heading", { name: "API Keys" }).waitFor();

  assert.equal(cli("keys", "list", "--org", ids.acme).length, keysBefore + 1, "exactly one key");
  assert.equal((await listCatalogs(key)).status, 200, "and it is the one that was shown");
});

test("an operator grants a catalog and the partner's Catalogs page shows it", async () => {
  const partner = await signIn("owner@acme.test");
  await partner.goto(`${base}/catalogs`);
  await partner.getByText("No catalogs yet").waitFor();
  await review(partner, "catalogs-empty");

  const op = await signIn("op@octogen.test");
  assert.equal(new URL(op.url()).pathname, "/operator/orgs");
  await op.getByRole("link", { name: "Acme Search" }).click();
  await op.getByLabel("Catalog", { exact: true }).selectOption("northwind");
  await op.getByRole("button", { name: "Grant catalog" }).click();
  await op.getByText("Catalog granted").waitFor();
  await review(op, "operator-org-granted");

  await partner.reload();
  const row = partner.locator('tr[data-catalog="northwind"]');
  await row.waitFor();
  assert.match(await row.innerText(), /Northwind Outfitters/);
  await partner.goto(`${base}/audit`);
  await partner.locator('tr[data-action="api_key.created"]').first().waitFor();
});

test("destructive operator actions ask first, and Cancel changes nothing", async () => {
  const op = await signIn("op@octogen.test");
  await op.goto(`${base}/operator/orgs/${ids.beta}`);
  await op.getByRole("link", { name: "Suspend…" }).click();
  await op.getByRole("heading", { name: "Suspend Beta Labs?" }).waitFor();
  await op.getByRole("link", { name: "Cancel" }).click();
  await op.getByRole("link", { name: "Suspend…" }).waitFor();
  await op.getByRole("link", { name: "Suspend…" }).click();
  await op.getByRole("button", { name: "Suspend organization" }).click();
  await op.getByText("Organization suspended").waitFor();
  await op.getByRole("button", { name: "Reactivate" }).click();
  await op.getByText("Organization reactivated").waitFor();
});

test("a member sees the keys but cannot create one", async () => {
  const page = await signIn("member@acme.test");
  await page.getByRole("heading", { name: "API Keys" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Create key" }).count(), 0);
  await page.getByText("Only owners and admins can create").waitFor();
  await review(page, "keys-as-member");
  // Even a hand-made form with a valid CSRF token is refused by the server.
  await page.evaluate(() => {
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/keys";
    const csrf = document.querySelector('input[name="csrf"]').cloneNode();
    const name = Object.assign(document.createElement("input"), { name: "name", value: "sneaky" });
    form.append(csrf, name);
    document.body.append(form);
    form.submit();
  });
  await page.getByText("Only owners and admins of Acme Search can create").waitFor();
  assert.ok(await page.getByRole("link", { name: "API Keys" }).isVisible(), "the error page keeps the navigation");
  await review(page, "member-create-refused");
});

test("a user in two organizations switches between them", async () => {
  const page = await signIn("multi@acme.test");
  await page.getByText("Keys of Acme Search").waitFor();
  await page.getByLabel("Organization").selectOption({ label: "Beta Labs" });
  await page.getByRole("button", { name: "Switch" }).click();
  await page.getByText("Keys of Beta Labs").waitFor();
  await review(page, "switched-organization");
});

test("the core flow works without JavaScript, and errors get pages", async () => {
  const page = await signIn("owner@acme.test", { javaScriptEnabled: false });
  await page.getByLabel("Name").fill("no-js key");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = await page.locator("#new-key").inputValue();
  assert.equal((await listCatalogs(key)).status, 200);
  assert.equal(await page.getByRole("button", { name: "Copy" }).isVisible(), false, "no copy button without JS");
  await page.goto(`${base}/keys/0123456789abcdef0123456789abcdef/deactivate`);
  await page.getByRole("heading", { name: "Page not found" }).waitFor();
  await page.goto(`${base}/keys/nope`);
  await page.getByRole("heading", { name: "Page not found" }).waitFor();
  assert.ok(await page.getByRole("link", { name: "Catalogs" }).isVisible(), "a 404 keeps the navigation");
  await page.goto(`${base}/operator/orgs`);
  await page.getByRole("heading", { name: "Not allowed" }).waitFor();
  await page.getByRole("link", { name: "Go to the portal home" }).click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${base}/login`);
  await page.goto(`${base}/keys`);
  assert.equal(new URL(page.url()).pathname, "/login", "signed out on the server");
});

/** Every portal page at one size: checked and photographed. */
async function tour(viewport) {
  // Data every page has something of: a rotated and a deactivated key, a long name.
  const minted = cli("keys", "create", "--org", ids.acme, "--name", "nightly catalogue sync for the reporting warehouse");
  cli("keys", "revoke", minted.id);

  const anonymous = await (await browser.newContext({ viewport })).newPage();
  await anonymous.goto(`${base}/login`);
  await review(anonymous, "login");

  const owner = await signIn("owner@acme.test", { viewport });
  const visit = async (page, path, name) => {
    await page.goto(`${base}${path}`);
    await review(page, name);
  };
  await visit(owner, "/keys", "keys");
  await owner.getByLabel("Name").fill(`tour at ${viewport.width}px`);
  await owner.getByRole("button", { name: "Create key" }).click();
  await owner.getByText("It will not be shown again").waitFor();
  await review(owner, "key-created");
  const keyId = (await owner.locator("#new-key").inputValue()).slice(10, 42);
  await visit(owner, `/keys/${keyId}/rotate`, "key-rotate-confirm");
  await owner.getByRole("button", { name: "Create replacement key" }).click();
  await owner.getByText("keeps working until").waitFor();
  await review(owner, "key-rotated");
  await visit(owner, `/keys/${keyId}/deactivate`, "key-deactivate-confirm");
  await visit(owner, "/keys?deactivated=hide", "keys-active-only");
  await visit(owner, "/catalogs", "catalogs");
  await visit(owner, "/audit", "audit");
  await visit(owner, "/audit?action=api_key.created&actor=owner", "audit-filtered");
  await visit(owner, "/audit?from=yesterday", "audit-bad-date");
  await visit(owner, "/keys/nope", "not-found");
  await visit(owner, "/operator/orgs", "forbidden");
  // A refused form (the browser's own check is lifted to reach the server's).
  await owner.goto(`${base}/keys`);
  await owner.getByLabel("Name").evaluate((input) => input.removeAttribute("required"));
  await owner.getByRole("button", { name: "Create key" }).click();
  await owner.getByText("Enter a name.").waitFor();
  await review(owner, "keys-refused");

  const op = await signIn("op@octogen.test", { viewport });
  const runId = cli("admin", "catalog", "runs", "northwind")[0].id;
  for (const [path, name] of [
    ["/operator/orgs", "operator-orgs"],
    [`/operator/orgs/${ids.acme}`, "operator-org"],
    [`/operator/orgs/${ids.acme}/suspend`, "operator-org-suspend-confirm"],
    [`/operator/orgs/${ids.acme}/grants/northwind/revoke`, "operator-grant-remove-confirm"],
    ["/operator/catalogs", "operator-catalogs"],
    ["/operator/catalogs/northwind", "operator-catalog"],
    ["/operator/catalogs/northwind/deactivate", "operator-catalog-deactivate-confirm"],
    [`/operator/runs/${runId}`, "operator-run"],
    ["/operator/users", "operator-users"],
    [`/operator/users/${ids.owner}`, "operator-user"],
    [`/operator/users/${ids.owner}/memberships/${ids.acme}/remove`, "operator-membership-remove-confirm"],
    [`/operator/users/${ids.owner}/disable`, "operator-user-disable-confirm"],
    [`/operator/users/${ids.owner}/operator/grant`, "operator-user-operator-confirm"],
    [`/operator/users/${ids.owner}/sessions/revoke`, "operator-user-sessions-confirm"],
    ["/operator/nothing/here", "operator-not-found"],
  ]) {
    await visit(op, path, name);
  }
}

test("every portal page fits a 1280 px window: no sideways scrolling, every button visible", async () => {
  await tour(DESKTOP);
});

test("every portal page fits a phone (390 px): no sideways scrolling, every button visible", async () => {
  await tour(PHONE);
});
