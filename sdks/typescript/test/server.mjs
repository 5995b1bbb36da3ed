// A real octogen server for the SDK tests: `target/debug/octogen serve` (or
// $OCTOGEN_BIN) on an ephemeral loopback port with a temporary data directory,
// and the contract fixture (sdks/contract/README.md) built through the real
// `octogen` CLI. Keys are minted at run time.

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const bin = process.env.OCTOGEN_BIN ?? join(repo, "target/debug/octogen");
export const contractDir = join(repo, "sdks/contract");
const feed = join(repo, "crates/octogen-server/demo/northwind-products.json");

/**
 * The environment for octogen: ours minus every OCTOGEN_* variable (`serve`
 * refuses unknown ones, e.g. CI's OCTOGEN_TEST_DATABASE_URL or OCTOGEN_BIN)
 * and the client's OCTO_* key variables, plus `extra`.
 */
function octogenEnv(extra) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("OCTOGEN_") && !name.startsWith("OCTO_")),
  );
  return { ...env, ...extra };
}

/** Starts the server and builds the fixture; `stop()` ends it. */
export async function startServer() {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build -p octogen\` first (or set OCTOGEN_BIN)`);
  const adminToken = `octo_admin_${randomBytes(32).toString("base64url")}`;
  const dataDir = mkdtempSync(join(tmpdir(), "octogen-ts-sdk-"));
  const child = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"], {
    env: octogenEnv({ OCTOGEN_ADMIN_TOKEN: adminToken }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const base = await new Promise((resolvePromise, reject) => {
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
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.on("exit", (code) => reject(new Error(`server exited (${code}):\n${buffered}`)));
  });
  // Keep draining the logs so the pipe never fills.
  child.stdout.resume();
  child.stderr.resume();

  const cli = (...args) =>
    JSON.parse(
      execFileSync(bin, [...args, "--json"], {
        env: octogenEnv({ OCTOGEN_SERVER: base, OCTOGEN_ADMIN_TOKEN: adminToken }),
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
  cli("admin", "catalog", "create", "--key", "northwind", "--name", "Northwind Outfitters", "--source-url", "https://northwind.example");
  cli("catalog", "import", "--catalog", "northwind", "--format", "shopify", "--currency", "USD", feed);
  const keys = {};
  const orgIds = {};
  for (const [name, label, type] of [
    ["partner", "Contract Partner", "catalog_partner"],
    ["empty", "Contract Empty", "catalog_partner"],
    ["merchant", "Contract Merchant", "merchant"],
  ]) {
    orgIds[name] = cli("admin", "org", "create", "--name", label, "--type", type).id;
    if (name === "partner") cli("admin", "grant", "--org", orgIds[name], "--catalog", "northwind");
    keys[name] = cli("keys", "create", "--org", orgIds[name], "--name", "sdk-tests").key;
  }
  const partner = keys.partner;
  keys.wrong_secret = partner.slice(0, -1) + (partner.endsWith("A") ? "B" : "A");
  return {
    base,
    keys,
    orgIds,
    cli,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((done) => (child.exitCode !== null ? done() : child.once("exit", done)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` with the key variables removed from the environment, restoring them after. */
export async function withoutAmbientKeys(fn) {
  const names = ["OCTO_API_KEY", "OCTOGEN_PLATFORM_API_KEY", "OCTO_BASE_URL"];
  const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
  for (const name of names) delete process.env[name];
  try {
    return await fn();
  } finally {
    for (const name of names) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
}
