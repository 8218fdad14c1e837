"""The error-body parser: every shape a flow call can fail with, read into one report."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowscope._errors import ErrorReport, parse_error_body

from .complexity import assert_cost_grows_at_most

JSON = {"Content-Type": "application/json"}

GENESYS_400 = {
    "message": "The request could not be understood by the server due to malformed syntax.",
    "code": "bad.request",
    "status": 400,
    "messageWithParams": "Invalid value for {field}",
    "messageParams": {"field": "inputData"},
    "contextId": "body-context-id",
    "details": [
        {"errorCode": "invalid.value", "fieldName": "flowId"},
        {"errorCode": "invalid.value", "fieldName": "inputData"},
        {"errorCode": "invalid.value", "fieldName": "flowId"},
    ],
    "errors": [
        {
            "message": "nested",
            "code": "invalid.value",
            "details": [{"fieldName": "inputData.Flow.customerId"}],
            "errors": [{"code": "invalid.value", "details": [{"fieldName": "flowVersion"}]}],
        }
    ],
}


def _parse(
    body: bytes | dict[str, object], headers: object = None, status: int = 400
) -> ErrorReport:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return parse_error_body(status, headers, raw)  # type: ignore[arg-type]


def test_genesys_error_body_gives_code_message_and_every_field() -> None:
    report = _parse(GENESYS_400, JSON)
    assert report.kind == "genesys"
    assert report.code == "bad.request"
    assert report.message == GENESYS_400["message"]
    assert report.fields == ("flowId", "inputData", "inputData.Flow.customerId", "flowVersion")
    assert report.message_params == {"field": "inputData"}
    assert report.document == GENESYS_400
    assert '"bad.request"' in report.text


def test_correlation_id_header_wins_over_body_context_id_in_any_case() -> None:
    headers = {"content-type": "application/json", "ININ-CORRELATION-ID": "header-id"}
    assert _parse(GENESYS_400, headers).correlation_id == "header-id"
    assert _parse(GENESYS_400, JSON).correlation_id == "body-context-id"


def test_headers_may_be_a_list_of_pairs_or_none() -> None:
    pairs = [("Inin-Correlation-Id", "from-pairs"), ("retry-after", "7")]
    report = _parse(GENESYS_400, pairs)
    assert (report.correlation_id, report.retry_after) == ("from-pairs", "7")
    assert _parse(GENESYS_400, None).kind == "genesys"


def test_retry_after_header_is_reported_on_rate_limit() -> None:
    body = {"message": "Rate limit exceeded", "code": "too.many.requests", "status": 429}
    report = _parse(body, {"Retry-After": "3", "Content-Type": "application/json"}, status=429)
    assert (report.status, report.code, report.retry_after) == (429, "too.many.requests", "3")


def test_message_is_built_from_message_with_params_when_message_is_absent() -> None:
    body = {
        "code": "invalid.value",
        "status": 400,
        "messageWithParams": "Value {value} is not valid for {field}",
        "messageParams": {"value": "abc", "field": "Flow.count"},
    }
    assert _parse(body).message == "Value abc is not valid for Flow.count"


def test_oauth_error_uses_error_as_code_and_description_as_message() -> None:
    report = _parse({"error": "invalid_client", "description": "client not found"}, status=401)
    assert (report.kind, report.code, report.message) == (
        "oauth",
        "invalid_client",
        "client not found",
    )
    report = _parse({"error": "invalid_grant", "error_description": "expired"}, status=400)
    assert (report.kind, report.code, report.message) == ("oauth", "invalid_grant", "expired")


def test_problem_json_uses_type_segment_and_detail() -> None:
    body = {
        "type": "https://example.com/probs/out-of-credit",
        "title": "You do not have enough credit.",
        "status": 403,
        "detail": "Your current balance is 30, but that costs 50.",
        "instance": "/account/12345/msgs/abc",
        "invalid-params": [{"name": "age", "reason": "must be positive"}],
    }
    report = _parse(body, {"Content-Type": "application/problem+json"}, status=403)
    assert report.kind == "problem"
    assert report.code == "out-of-credit"
    assert report.message == "Your current balance is 30, but that costs 50."
    assert report.fields == ("age",)


def test_problem_json_without_type_falls_back_to_title() -> None:
    body = {"title": "Bad Request", "status": 400, "errors": {"flowId": ["required"]}}
    report = _parse(body, {"Content-Type": "application/problem+json"})
    assert (report.kind, report.code, report.message) == ("problem", "Bad Request", "Bad Request")
    assert report.fields == ("flowId",)


def test_other_json_still_yields_code_and_message() -> None:
    report = _parse({"error": {"code": "Throttled", "message": "slow down"}})
    assert (report.kind, report.code, report.message) == ("json", "Throttled", "slow down")
    report = _parse(b"[1, 2, 3]", JSON)
    assert (report.kind, report.document) == ("json", [1, 2, 3])


def test_html_error_page_is_summarised_by_its_title() -> None:
    page = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>x</body></html>"
    report = _parse(page, {"Content-Type": "text/html; charset=utf-8"}, status=502)
    assert (report.kind, report.message) == ("html", "502 Bad Gateway")
    assert report.text.startswith("<!DOCTYPE html>")


def test_html_without_title_is_summarised_by_its_first_visible_text() -> None:
    page = b"<html><script>var a = 1;</script><body><h2>Service   &amp; gateway down</h2></body>"
    assert _parse(page, status=503).message == "Service & gateway down"


def test_plain_text_body_is_summarised_by_its_first_line() -> None:
    report = _parse(b"\n  upstream connect error or disconnect\nreset reason: overflow", status=503)
    assert (report.kind, report.message) == ("text", "upstream connect error or disconnect")


def test_long_first_line_is_bounded() -> None:
    report = _parse(b"x" * 5000, {"Content-Type": "text/plain"})
    assert report.message == "x" * 200


def test_empty_body_is_reported_as_empty() -> None:
    assert _parse(b"", JSON).kind == "empty"
    assert _parse(b"  \r\n", None).kind == "empty"


def test_malformed_json_keeps_the_text_and_salvages_code_and_message() -> None:
    full = json.dumps(GENESYS_400).encode()
    report = _parse(full[:150], JSON)
    assert report.kind == "malformed"
    assert report.code == "bad.request"
    assert report.message == GENESYS_400["message"]
    assert report.text == full[:150].decode()


def test_json_content_type_with_non_json_body_is_malformed() -> None:
    report = _parse(b"Internal Server Error", JSON, status=500)
    assert (report.kind, report.message) == ("malformed", "Internal Server Error")


def test_invalid_utf8_is_replaced_and_still_parsed() -> None:
    report = _parse(b'{"code": "bad.request", "message": "caf\xff", "status": 400}')
    assert report.kind == "genesys"
    assert report.message == "caf\ufffd"


def test_declared_charset_is_honoured() -> None:
    report = _parse("café".encode("latin-1"), {"Content-Type": "text/plain; charset=iso-8859-1"})
    assert report.text == "café"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image/png"),
        (b"plain bytes", "application/octet-stream"),
        (b"GIF89a\x00\x01\x02", None),
    ],
)
def test_binary_body_is_described_not_dumped(body: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    report = _parse(body, headers, status=500)
    assert report.kind == "binary"
    assert report.text == f"<{len(body)} bytes of {content_type or 'binary data'}>"


def test_json_nested_ten_thousand_levels_is_malformed_not_a_crash() -> None:
    report = _parse(b"[" * 10_000 + b"]" * 10_000, JSON)
    assert report.kind == "malformed"


def test_deeply_nested_errors_are_followed_to_a_bounded_depth() -> None:
    depth = 200
    body = (
        '{"code": "bad.request", "message": "m", "errors": ['
        + "".join(f'{{"details": [{{"fieldName": "f{i}"}}], "errors": [' for i in range(depth))
        + "]}" * depth
        + "]}"
    )
    report = _parse(body.encode(), JSON)
    assert report.kind == "genesys"
    assert report.fields[:3] == ("f0", "f1", "f2")
    assert len(report.fields) < depth


def _details(count: int) -> bytes:
    details = ",".join(
        f'{{"errorCode": "invalid.value", "fieldName": "field{i}"}}' for i in range(count)
    )
    return f'{{"code": "bad.request", "message": "m", "details": [{details}]}}'.encode()


def test_hundred_thousand_details_are_capped_at_a_hundred_unique_fields() -> None:
    body, tenth = _details(100_000), _details(10_000)
    report = _parse(body, JSON)
    assert report.fields == tuple(f"field{i}" for i in range(100))
    assert _parse(tenth, JSON).fields == report.fields
    # Linear in the body at worst (timings: `make bench`).
    assert_cost_grows_at_most(lambda: _parse(tenth, JSON), lambda: _parse(body, JSON), growth=10)


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("text", lambda n: (b"a" * n, {"Content-Type": "text/plain"})),
        (
            "json",
            lambda n: (json.dumps({"code": "bad.request", "message": "m" * n}).encode(), JSON),
        ),
        ("html", lambda n: (b"<" * n, None)),
    ],
)
def test_ten_megabyte_bodies_cost_linear_work_and_text_is_bounded(kind: str, make: Any) -> None:
    body, headers = make(10_000_000)
    small, small_headers = make(1_000_000)
    report = _parse(body, headers)
    # kind, code, message shown (its first characters, bounded), display text bounded.
    expected = {
        "text": ("text", None, "a" * 200),
        "json": ("genesys", "bad.request", "m" * 4_000),
        "html": ("html", None, None),
    }
    assert (report.kind, report.code, report.message) == expected[kind]
    assert (len(report.text), report.text_truncated) == (65_536, True)
    assert_cost_grows_at_most(
        lambda: _parse(small, small_headers), lambda: _parse(body, headers), growth=10
    )


def test_max_text_bounds_the_display_text() -> None:
    report = parse_error_body(400, JSON, json.dumps(GENESYS_400).encode(), max_text=10)
    assert (len(report.text), report.text_truncated, report.code) == (10, True, "bad.request")


def test_parser_never_raises_on_hostile_headers_or_body() -> None:
    report = parse_error_body(400, [("content-type", b"application/json")], b"{")  # type: ignore[list-item]
    assert report.kind == "malformed"
    report = parse_error_body(400, {"Content-Type": "text/plain; charset=hex"}, b"hello")
    assert report.text == "hello"
    report = parse_error_body(400, 42, b"oops")  # type: ignore[arg-type]
    assert report.status == 400


def test_html_page_mislabelled_as_json_is_read_as_html() -> None:
    page = b"<html><head><title>504 Gateway Time-out</title></head></html>"
    report = _parse(page, JSON, status=504)
    assert (report.kind, report.message) == ("html", "504 Gateway Time-out")


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=512),
        st.text(max_size=256).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["code", "message", "details", "errors", "fieldName", "error"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=20,
        ).map(lambda doc: json.dumps(doc).encode()),
    ),
    content_type=st.sampled_from(
        [None, "application/json", "text/html", "text/plain; charset=bogus", "image/png", ""]
    ),
)
def test_parser_never_raises_on_any_body(body: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else None
    report = parse_error_body(418, headers, body)
    assert report.status == 418
    assert report.kind in {
        "genesys",
        "oauth",
        "problem",
        "json",
        "text",
        "html",
        "empty",
        "binary",
        "malformed",
    }
    assert len(report.fields) <= 100
