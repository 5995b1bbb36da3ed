"""A real octogen server for the SDK tests.

Starts ``target/debug/octogen serve`` (or ``$OCTOGEN_BIN``) on an ephemeral
loopback port with a temporary data directory, then sets up the contract
fixture (``sdks/contract/README.md``) through the real ``octogen`` CLI:
``admin catalog create``, ``catalog import`` of the sample feed, ``admin org
create``, ``admin grant`` and ``keys create``. Keys are minted at run time.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("OCTOGEN_BIN", REPO / "target" / "debug" / "octogen"))
FEED = REPO / "crates" / "octogen-server" / "demo" / "northwind-products.json"
CONTRACT = REPO / "sdks" / "contract"


def _env(**extra: str) -> Dict[str, str]:
    """The environment for octogen: ours minus every OCTOGEN_* variable (``serve``
    refuses unknown ones, e.g. CI's OCTOGEN_TEST_DATABASE_URL or OCTOGEN_BIN) and
    the client's key variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCTOGEN_") and not k.startswith("OCTO_")}
    env.update(extra)
    return env


@dataclass
class Server:
    base: str
    admin_token: str
    keys: Dict[str, str]
    org_ids: Dict[str, str]

    def cli(self, *args: str) -> Any:
        """``octogen ARGS --json`` against this server; the parsed output."""
        out = subprocess.run(
            [str(BIN), *args, "--json"],
            env=_env(OCTOGEN_SERVER=self.base, OCTOGEN_ADMIN_TOKEN=self.admin_token),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if out.returncode != 0:
            raise AssertionError(f"octogen {' '.join(args)} failed ({out.returncode}): {out.stderr}")
        return json.loads(out.stdout)

    def mint_key(self, org_id: str) -> str:
        return self.cli("keys", "create", "--org", org_id, "--name", "sdk-tests")["key"]

    @property
    def wrong_secret(self) -> str:
        key = self.keys["partner"]
        return key[:-1] + ("B" if key.endswith("A") else "A")


def _start(data_dir: str, admin_token: str) -> "tuple[subprocess.Popen[bytes], str, Path]":
    log_path = Path(data_dir) / "server.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [str(BIN), "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--log-format", "json"],
        env=_env(OCTOGEN_ADMIN_TOKEN=admin_token),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("message") == "octogen is listening":
                return process, f"http://{event['address']}", log_path
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the octogen server did not start:\n{log_path.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    if not BIN.exists():
        pytest.fail(f"{BIN} is missing: run `cargo build -p octogen` first (or set OCTOGEN_BIN)")
    admin_token = "octo_admin_" + secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="octogen-py-sdk-") as data_dir:
        process, base, _ = _start(data_dir, admin_token)
        try:
            srv = Server(base=base, admin_token=admin_token, keys={}, org_ids={})
            srv.cli("admin", "catalog", "create", "--key", "northwind", "--name", "Northwind Outfitters",
                    "--source-url", "https://northwind.example")
            srv.cli("catalog", "import", "--catalog", "northwind", "--format", "shopify", "--currency", "USD", str(FEED))
            for name, label, org_type in (
                ("partner", "Contract Partner", "catalog_partner"),
                ("empty", "Contract Empty", "catalog_partner"),
                ("merchant", "Contract Merchant", "merchant"),
            ):
                org_id = srv.cli("admin", "org", "create", "--name", label, "--type", org_type)["id"]
                srv.org_ids[name] = org_id
                if name == "partner":
                    srv.cli("admin", "grant", "--org", org_id, "--catalog", "northwind")
                srv.keys[name] = srv.mint_key(org_id)
            yield srv
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own key or server must not make a test pass for the wrong reason."""
    for name in ("OCTO_API_KEY", "OCTOGEN_PLATFORM_API_KEY", "OCTO_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
