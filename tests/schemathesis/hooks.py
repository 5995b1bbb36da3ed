"""Schemathesis hooks for octogen's OpenAPI run (see .ci/run).

Two rules of the search body cannot be written in JSON Schema, so generated
bodies are adjusted to respect them (both rules are covered by the Rust
integration suite, crates/octogen/tests/it/search.rs):

- Search cursors are issued by the server (`nextCursor`), HMAC-signed and bound
  to the query that made them; a string invented by the fuzzer is schema-valid
  but never a real cursor, and the server rightly answers 422. The fuzzer does
  not invent cursor strings (non-string cursors stay, so types are still fuzzed).
- `price_min` must not exceed `price_max` (a cross-field rule); generated bounds
  in the wrong order are swapped. The bounds of `text_search_query` hold
  together with the top-level ones (2026-05-28, docs/VERSIONS.md), so nested
  bounds that would cross them are dropped.
"""

import schemathesis


@schemathesis.hook
def map_body(ctx, body):
    operation = getattr(ctx, "operation", None)
    if operation is not None and getattr(operation, "path", "") == "/v1/products/search":
        if isinstance(body, dict):
            body = dict(body)
            if isinstance(body.get("cursor"), str):
                del body["cursor"]
            low, high = body.get("price_min"), body.get("price_max")
            if _is_number(low) and _is_number(high) and low > high:
                body["price_min"], body["price_max"] = high, low
            nested = body.get("text_search_query")
            if isinstance(nested, dict):
                body["text_search_query"] = _without_crossing_bounds(nested, body)
    return body


def _without_crossing_bounds(nested, body):
    """`text_search_query` without its price bounds when, with the top level's, they would cross."""
    lows = [v for v in (body.get("price_min"), nested.get("price_min")) if _is_number(v)]
    highs = [v for v in (body.get("price_max"), nested.get("price_max")) if _is_number(v)]
    if lows and highs and max(lows) > min(highs):
        return {key: value for key, value in nested.items() if key not in ("price_min", "price_max")}
    return nested


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
