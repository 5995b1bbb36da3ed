// The partner portal in a real browser (Debian's chromium, driven by playwright-core).
//
// Boots `target/debug/octogen serve` on an ephemeral port with a fresh data
// directory, creates organizations, a catalog and users through the real
// `octogen admin` CLI, then walks the flows as people would. Every page
// visited is saved as a screenshot under target/portal-screenshots/.
//
// Run: cargo build -p octogen && (cd tests/browser && npm ci && npm test)
// Env: OCTOGEN_BIN (default ../../target/debug/octogen), CHROMIUM (default /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = process.env.OCTOGEN_BIN ?? join(root, "target/debug/octogen");
const shots = join(root, "target/portal-screenshots");
const PASSWORD = "correct horse battery staple";

let server;
let base;
let browser;
let dataDir;
const adminToken = `octo_admin_${randomBytes(32).toString("base64url")}`;
const ids = {};

/** `octogen admin …` against the test server; returns parsed JSON output. */
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

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** A fresh browser context (its own cookies) signed in as `email`. */
async function signIn(email, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
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
  cli("admin", "user", "create", "--operator", "--email", "op@octogen.test", "--password", PASSWORD);
  cli("admin", "user", "create", "--email", "owner@acme.test", "--org", ids.acme, "--role", "owner", "--password", PASSWORD);
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
  const login = await (await browser.newContext()).newPage();
  await login.goto(`${base}/login`);
  await shot(login, "01-login");
  await login.getByLabel("Email").fill("owner@acme.test");
  await login.getByLabel("Password").fill("not the password, but long");
  await login.getByRole("button", { name: "Sign in" }).click();
  await assert.doesNotReject(login.getByText("Incorrect email or password.").waitFor());
  await shot(login, "02-login-failed");

  const page = await signIn("owner@acme.test");
  assert.equal(new URL(page.url()).pathname, "/keys");
  await assert.doesNotReject(page.getByText("No keys yet").waitFor());
  await shot(page, "03-keys-empty");

  await page.getByLabel("Name").fill("production backend");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.getByText("It will not be shown again").waitFor();
  const key = await page.locator("#new-key").inputValue();
  assert.match(key, /^octo_live_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
  assert.ok(await page.getByRole("button", { name: "Copy" }).isVisible(), "the copy button appears with JavaScript");
  await shot(page, "04-key-created");

  const ok = await listCatalogs(key);
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), []);

  await page.getByRole("link", { name: "I have copied the key" }).click();
  const row = page.locator(`tr[data-key-id="${key.slice(10, 42)}"]`);
  assert.ok(!(await page.content()).includes(key), "the list never shows the secret");
  await shot(page, "05-keys-list");
  await row.getByRole("link", { name: "Rotate" }).click();
  await shot(page, "06-rotate-confirm");
  await page.goBack();
  await row.getByRole("link", { name: "Deactivate" }).click();
  await page.getByText("the next request that uses this key fails with 401").waitFor();
  await shot(page, "07-deactivate-confirm");
  await page.getByRole("button", { name: "Deactivate key" }).click();
  await page.getByText("The key was deactivated").waitFor();
  await shot(page, "08-key-deactivated");

  const refused = await listCatalogs(key);
  assert.equal(refused.status, 401);
});

test("an operator grants a catalog and the partner's Catalogs page shows it", async () => {
  const partner = await signIn("owner@acme.test");
  await partner.goto(`${base}/catalogs`);
  await partner.getByText("No catalogs yet").waitFor();
  await shot(partner, "09-catalogs-empty");

  const op = await signIn("op@octogen.test");
  assert.equal(new URL(op.url()).pathname, "/operator/orgs");
  await shot(op, "10-operator-orgs");
  await op.getByRole("link", { name: "Acme Search" }).click();
  await op.getByLabel("Catalog", { exact: true }).selectOption("northwind");
  await op.getByRole("button", { name: "Grant catalog" }).click();
  await op.getByText("Catalog granted").waitFor();
  await shot(op, "11-operator-org-granted");
  for (const [path, name] of [
    ["/operator/catalogs", "12-operator-catalogs"],
    ["/operator/catalogs/northwind", "13-operator-catalog"],
    ["/operator/users", "14-operator-users"],
  ]) {
    await op.goto(`${base}${path}`);
    await shot(op, name);
  }

  await partner.reload();
  const row = partner.locator('tr[data-catalog="northwind"]');
  await row.waitFor();
  assert.match(await row.innerText(), /Northwind Outfitters/);
  await shot(partner, "15-catalogs-granted");
  await partner.goto(`${base}/audit`);
  await partner.getByText("Created an API key").first().waitFor();
  await shot(partner, "16-audit-log");
});

test("a member sees the keys but cannot create one", async () => {
  const page = await signIn("member@acme.test");
  await page.getByRole("heading", { name: "API Keys" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Create key" }).count(), 0);
  await page.getByText("Only owners and admins can create").waitFor();
  await shot(page, "17-keys-as-member");
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
  await shot(page, "18-member-create-refused");
});

test("a user in two organizations switches between them", async () => {
  const page = await signIn("multi@acme.test");
  await page.getByText("Keys of Acme Search").waitFor();
  await page.getByLabel("Organization").selectOption({ label: "Beta Labs" });
  await page.getByRole("button", { name: "Switch" }).click();
  await page.getByText("Keys of Beta Labs").waitFor();
  await shot(page, "19-switched-organization");
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
  await shot(page, "20-not-found");
  await page.goto(`${base}/operator/orgs`);
  await page.getByRole("heading", { name: "Not allowed" }).waitFor();
  await shot(page, "21-forbidden");
  await page.getByRole("link", { name: "Go to the portal home" }).click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${base}/login`);
  await page.goto(`${base}/keys`);
  assert.equal(new URL(page.url()).pathname, "/login", "signed out on the server");
});

test("the layout holds on a phone-sized screen", async () => {
  // A narrow window (not isMobile: that lets the layout viewport grow with the content).
  const page = await signIn("owner@acme.test", { viewport: { width: 390, height: 844 } });
  for (const [path, name] of [["/keys", "22-keys-phone"], ["/catalogs", "23-catalogs-phone"], ["/audit", "24-audit-phone"]]) {
    await page.goto(`${base}${path}`);
    await shot(page, name);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${path}: no horizontal scrolling of the page (${overflow}px); wide tables scroll in place`);
  }
});
