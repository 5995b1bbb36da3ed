"""Every shared contract case (sdks/contract/*.json), raw and through the SDK."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

import httpx
import pytest

import octogen_ai_sdk as sdk
from conftest import CONTRACT, Server

_MISSING = object()


def _load() -> List[Dict[str, Any]]:
    cases = []
    for path in sorted(CONTRACT.glob("*.json")):
        cases.extend(json.loads(path.read_text())["cases"])
    return cases


CASES = _load()

ERROR_CLASSES = {
    "MissingApiKey": sdk.MissingAPIKeyError,
    "Authentication": sdk.OctogenAuthenticationError,
    "Forbidden": sdk.OctogenForbiddenError,
    "NotFound": sdk.OctogenNotFoundError,
    "Validation": sdk.OctogenValidationError,
    "RateLimited": sdk.OctogenRateLimitError,
}


def resolve(root: Any, path: str) -> List[Any]:
    values = [root]
    if path == "":
        return values
    for step in path.split("."):
        nxt: List[Any] = []
        for value in values:
            if step == "*" and isinstance(value, list):
                nxt.extend(value)
            elif step == "*" and isinstance(value, dict):
                nxt.extend(value.values())
            elif isinstance(value, list):
                index = int(step) if step.isdigit() else -1
                nxt.append(value[index] if 0 <= index < len(value) else _MISSING)
            elif isinstance(value, dict):
                nxt.append(value.get(step, _MISSING))
            else:
                nxt.append(_MISSING)
        values = nxt
    return values


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return a == b


def check(root: Any, rule: Dict[str, Any]) -> None:
    path = rule["path"]
    values = resolve(root, path)
    assert not ("*" in path and not values), f"{path}: matched nothing"
    assert all(v is not _MISSING for v in values), f"{path}: missing"
    for name, expected in rule.items():
        if name == "path":
            continue
        if name == "distinct":
            texts = [json.dumps(v, sort_keys=True) for v in values]
            assert len(set(texts)) == len(texts), f"{path}: not distinct"
        elif name == "containsAll":
            pool = values[0] if len(values) == 1 and isinstance(values[0], list) and "*" not in path else values
            for want in expected:
                assert any(equal(have, want) for have in pool), f"{path}: no {want!r}"
        else:
            for value in values:
                if name == "equals":
                    ok = equal(value, expected)
                elif name == "type":
                    ok = type_name(value) == expected
                elif name == "gte":
                    ok = type_name(value) == "number" and value >= expected
                elif name == "lte":
                    ok = type_name(value) == "number" and value <= expected
                elif name in ("length", "minLength"):
                    ok = isinstance(value, (list, str, dict)) and (
                        len(value) == expected if name == "length" else len(value) >= expected
                    )
                elif name == "hasKeys":
                    ok = isinstance(value, dict) and all(key in value for key in expected)
                else:
                    raise AssertionError(f"{path}: unknown rule {name}")
                assert ok, f"{path}: {name} {expected!r} failed on {json.dumps(value)[:300]}"


def check_error_body(expect: Dict[str, Any], body: Any) -> None:
    if "detail" in expect:
        assert body.get("detail") == expect["detail"], body
    if "detailLocs" in expect:
        assert [issue["loc"] for issue in body["detail"]] == expect["detailLocs"], body


def key_for(server: Server, name: str) -> Optional[str]:
    if name == "none":
        return None
    if name == "wrong_secret":
        return server.wrong_secret
    return server.keys[name]


def test_the_contract_has_cases() -> None:
    assert len(CASES) >= 20
    assert len({case["name"] for case in CASES}) == len(CASES)


def test_the_checks_catch_what_they_should() -> None:
    page = {"items": [{"uuid": "a", "price": 5}, {"uuid": "b", "price": 7}], "nextCursor": None}
    check(page, {"path": "items.*.price", "gte": 5, "lte": 7})
    for bad in (
        {"path": "items", "length": 3},
        {"path": "items.*.price", "gte": 6},
        {"path": "missing", "type": "null"},
        {"path": "items.0.price", "bogus": 1},
        {"path": "items.*.uuid", "containsAll": ["c"]},
    ):
        with pytest.raises(AssertionError):
            check(page, bad)
    with pytest.raises(AssertionError):
        check({"items": []}, {"path": "items.*.uuid", "equals": "a"})


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_raw(server: Server, case: Dict[str, Any]) -> None:
    request = case["request"]
    headers = {}
    key = key_for(server, case["key"])
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    response = httpx.request(request["method"], server.base + request["path"], headers=headers, json=request.get("body"))
    expect = case["expect"]
    assert response.status_code == expect["status"], response.text
    body = response.json()
    if response.status_code >= 400:
        check_error_body(expect, body)
    elif not case["call"].get("all"):
        for rule in expect.get("checks", []):
            check(body, rule)


async def _call(client: sdk.OctogenClient, call: Dict[str, Any]) -> Any:
    args = call.get("args", {})
    op = call["op"]
    if op == "listCatalogs":
        return [c.model_dump(by_alias=True, mode="json") for c in await client.list_catalogs()]
    if op == "lookupProduct":
        return (await client.lookup_product(args["url"])).model_dump(by_alias=True, mode="json")
    if op == "searchProducts":
        filters = {k: v for k, v in args.items() if k != "q"}
        if call.get("all"):
            items = []
            pages = 0
            async for page in client.iter_pages(args.get("q"), **filters):
                pages += 1
                items.extend(item.model_dump(by_alias=True, mode="json") for item in page.items)
            return {"items": items, "pages": pages}
        return (await client.search_products(args.get("q"), **filters)).model_dump(by_alias=True, mode="json")
    raise AssertionError(f"unknown op {op}")


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
async def test_through_the_sdk(server: Server, case: Dict[str, Any]) -> None:
    expect = case["expect"]
    error_class = ERROR_CLASSES.get(expect.get("error", ""), None)
    if expect.get("error"):
        assert error_class is not None, f"unknown error class {expect['error']}"
        with pytest.raises(error_class) as raised:
            async with sdk.OctogenClient(api_key=key_for(server, case["key"]), base_url=server.base) as client:
                await _call(client, case["call"])
        error = raised.value
        if isinstance(error, sdk.OctogenAPIError):
            assert error.status_code == expect["status"]
            check_error_body(expect, json.loads(error.body))
            assert error.detail == json.loads(error.body)["detail"]
        return
    async with sdk.OctogenClient(api_key=key_for(server, case["key"]), base_url=server.base) as client:
        result = await _call(client, case["call"])
    for rule in expect.get("checks", []):
        check(result, rule)
