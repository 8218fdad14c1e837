from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flowscope._redact import REDACTED, Redacted, Redactor

from .complexity import assert_cost_grows_at_most

JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJjbGllbnQtMTIzIiwiZXhwIjoxNzAwMDAwMDAwfQ"
    ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA"
)


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "access_token",
        "refresh_token",
        "id_token",
        "accessToken",
        "refreshToken",
        "client_secret",
        "clientSecret",
        "api_key",
        "apiKey",
        "apikey",
        "X-Api-Key",
        "private_key",
        "jwt",
        "password",
        "PASSWORD",
        "passwd",
        "pass_word",
        "sessionId",
        "cookie",
        "signature",
        "credentials",
        "sig",
        "Authorization",
    ],
)
def test_secret_key_names_are_sensitive(redactor: Redactor, name: str) -> None:
    assert redactor.is_sensitive_key(name)


@pytest.mark.parametrize(
    "name",
    [
        "flowId",
        "flowVersion",
        "inputData",
        "name",
        "id",
        "selfUri",
        "fieldName",
        "errorCode",
        "code",
        "messageWithParams",
        "contextId",
        "status",
        "token_type",
        "tokenType",
        "expires_in",
        "message",
        "entityId",
        "desk_eye",
        "authorName",
    ],
)
def test_diagnostic_key_names_are_not_sensitive(redactor: Redactor, name: str) -> None:
    assert not redactor.is_sensitive_key(name)


# -- headers ----------------------------------------------------------------------------------


def test_authorization_header_keeps_its_scheme_only(redactor: Redactor) -> None:
    result = redactor.headers([("Authorization", f"Bearer {JWT}")])
    assert result == Redacted([("Authorization", "Bearer [REDACTED]")], ("header:authorization",))
    assert redactor.header_value("authorization", "Basic Y2xpZW50OnMzY3IzdA==") == (
        "Basic [REDACTED]"
    )


def test_authorization_header_without_known_scheme_is_redacted_whole(redactor: Redactor) -> None:
    assert redactor.header_value("Authorization", "s3cr3t-raw-token") == REDACTED
    # A raw secret containing a space must not be mistaken for "scheme credentials".
    assert redactor.header_value("Proxy-Authorization", "hunter2 hunter3") == REDACTED
    assert redactor.header_value("Proxy-Authorization", "Digest abc") == "Digest [REDACTED]"


def test_cookie_headers_are_redacted_with_response_paths(redactor: Redactor) -> None:
    result = redactor.headers(
        [("Set-Cookie", "sid=abc123; Path=/; HttpOnly"), ("Cookie", "sid=abc123")],
        where="response.header",
    )
    assert result.value == [("Set-Cookie", REDACTED), ("Cookie", REDACTED)]
    assert result.paths == ("response.header:set-cookie", "response.header:cookie")


@pytest.mark.parametrize(
    "name",
    ["x-api-key", "X-Auth-Token", "x-session-id", "x-client-secret", "x-amz-security-token"],
)
def test_headers_named_like_secrets_are_redacted(redactor: Redactor, name: str) -> None:
    assert redactor.headers([(name, "value-123")]).value == [(name, REDACTED)]


def test_diagnostic_headers_are_kept(redactor: Redactor) -> None:
    headers = [
        ("ININ-Correlation-Id", "7b3a5c1e-0000-4f00-8000-1234567890ab"),
        ("Content-Type", "application/json"),
        ("Retry-After", "30"),
        ("inin-ratelimit-count", "301"),
        ("inin-ratelimit-allowed", "300"),
        ("inin-ratelimit-reset", "42"),
    ]
    assert redactor.headers(headers) == Redacted(headers, ())


def test_jwt_inside_an_ordinary_header_is_scrubbed(redactor: Redactor) -> None:
    result = redactor.headers([("X-Debug", f"forwarded {JWT}")])
    assert result.value == [("X-Debug", "forwarded [REDACTED]")]
    assert result.paths == ("header:x-debug",)


# -- URLs -------------------------------------------------------------------------------------


def test_token_in_query_string_is_redacted(redactor: Redactor) -> None:
    url = "https://api.mypurecloud.com/api/v2/flows/executions?access_token=abc123&pageSize=25"
    result = redactor.url(url)
    assert result.value == (
        "https://api.mypurecloud.com/api/v2/flows/executions?access_token=[REDACTED]&pageSize=25"
    )
    assert result.paths == ("url:query.access_token",)


def test_oauth_code_signature_and_amz_query_params_are_redacted(redactor: Redactor) -> None:
    url = "https://h/cb?code=c0de&state=xyz&sig=abc&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ff"
    result = redactor.url(url)
    assert result.value == (
        "https://h/cb?code=[REDACTED]&state=xyz&sig=[REDACTED]"
        "&X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]"
    )
    assert "url:query.code" in result.paths
    assert "url:query.X-Amz-Credential" in result.paths


def test_unrelated_query_params_stay_byte_identical(redactor: Redactor) -> None:
    url = "https://h/p?q=a%20b+c&empty=&flag&sort=name%2Casc&token=t"
    assert (
        redactor.url(url).value
        == "https://h/p?q=a%20b+c&empty=&flag&sort=name%2Casc&token=[REDACTED]"
    )


def test_url_without_secrets_is_returned_unchanged(redactor: Redactor) -> None:
    url = "https://api.mypurecloud.com/api/v2/flows/executions/abc-123?expand=a%2Cb#top"
    assert redactor.url(url) == Redacted(url, ())


def test_userinfo_in_url_is_redacted(redactor: Redactor) -> None:
    result = redactor.url("https://client:s3cr3t@login.mypurecloud.com/oauth/token")
    assert result == Redacted(
        "https://[REDACTED]@login.mypurecloud.com/oauth/token", ("url:userinfo",)
    )


def test_jwt_in_url_path_is_redacted(redactor: Redactor) -> None:
    result = redactor.url(f"https://h/api/v2/sessions/{JWT}/status")
    assert result.value == "https://h/api/v2/sessions/[REDACTED]/status"
    assert result.paths == ("url:path",)


def test_token_in_url_fragment_is_redacted(redactor: Redactor) -> None:
    result = redactor.url("https://app/cb#access_token=abc123&token_type=bearer&expires_in=86399")
    assert (
        result.value == "https://app/cb#access_token=[REDACTED]&token_type=bearer&expires_in=86399"
    )


def test_token_in_an_encoded_redirect_parameter_is_redacted(redactor: Redactor) -> None:
    inner = quote("https://app/cb?access_token=abc123&x=1", safe="")
    result = redactor.url(f"https://h/login?redirect={inner}")
    assert "abc123" not in result.value
    assert result.paths == ("url:query.redirect",)


def test_user_key_applies_to_query_names() -> None:
    result = Redactor(redact_keys=["email"]).url("https://h/users?email=a%40b.example&page=2")
    assert result == Redacted("https://h/users?email=[REDACTED]&page=2", ("url:query.email",))


# -- text -------------------------------------------------------------------------------------


def test_jwt_inside_an_error_message_is_redacted(redactor: Redactor) -> None:
    message = f"Token {JWT} has expired; request a new one"
    result = redactor.text(message, where="response.body")
    assert result == Redacted(
        "Token [REDACTED] has expired; request a new one", ("response.body:jwt",)
    )


def test_bearer_and_basic_credentials_in_text_are_redacted(redactor: Redactor) -> None:
    text = "sent Bearer abc.DEF-123_x and Basic Y2xpZW50OnMzY3IzdA== then"
    result = redactor.text(text)
    assert result.value == "sent Bearer [REDACTED] and Basic [REDACTED] then"
    assert set(result.paths) == {"text:bearer", "text:basic"}


def test_basic_credentials_made_of_letters_only_are_redacted(redactor: Redactor) -> None:
    # base64("user:pass") happens to contain no digit.
    assert redactor.text("Basic dXNlcjpwYXNz").value == "Basic [REDACTED]"


def test_prose_about_bearer_and_basic_auth_is_kept(redactor: Redactor) -> None:
    text = "Invalid bearer token supplied; Basic authentication is disabled"
    assert redactor.text(text) == Redacted(text, ())


def test_sensitive_pairs_in_log_like_text_are_redacted(redactor: Redactor) -> None:
    text = (
        "retrying with access_token=abc123&x=1, "
        'body {"client_secret":"s3 cr3t","code":"bad.request"}'
        " and x-api-key: k-123"
    )
    result = redactor.text(text)
    assert result.value == (
        'retrying with access_token=[REDACTED]&x=1, body {"client_secret":"[REDACTED]",'
        '"code":"bad.request"} and x-api-key: [REDACTED]'
    )
    assert result.paths == ("text:key.access_token", "text:key.client_secret", "text:key.x-api-key")


def test_escaped_json_inside_text_is_redacted(redactor: Redactor) -> None:
    text = 'upstream said {\\"password\\":\\"hunter two\\"}'
    assert redactor.text(text).value == 'upstream said {\\"password\\":\\"[REDACTED]\\"}'


def test_authorization_line_in_text_keeps_scheme(redactor: Redactor) -> None:
    assert redactor.text("Authorization: Bearer abc123").value == "Authorization: Bearer [REDACTED]"


def test_user_pattern_replaces_whole_match() -> None:
    redactor = Redactor(redact_patterns=[r"[\w.+-]+@[\w-]+\.[\w.]+"])
    result = redactor.text("contact jane.doe@example.com today")
    assert result == Redacted("contact [REDACTED] today", ("text:pattern",))


def test_user_pattern_with_secret_group_replaces_only_the_group() -> None:
    redactor = Redactor(redact_patterns=[re.compile(r"customer (?P<secret>\d{6,})")])
    assert redactor.text("lookup customer 12345678 failed").value == (
        "lookup customer [REDACTED] failed"
    )


def test_text_without_secrets_is_unchanged(redactor: Redactor) -> None:
    text = "The request could not be understood by the server due to malformed syntax."
    assert redactor.text(text) == Redacted(text, ())


# -- JSON -------------------------------------------------------------------------------------


def test_sensitive_json_values_are_redacted_at_any_depth(redactor: Redactor) -> None:
    doc = {
        "client_secret": "s3cr3t",
        "a": {"b": [{"password": "p4ss", "user": "jane"}]},
        "inputData": {"Flow.accessToken": "tok", "Flow.customerId": "c-1"},
    }
    result = redactor.json(doc)
    assert result.value == {
        "client_secret": REDACTED,
        "a": {"b": [{"password": REDACTED, "user": "jane"}]},
        "inputData": {"Flow.accessToken": REDACTED, "Flow.customerId": "c-1"},
    }
    assert set(result.paths) == {
        "body:$.client_secret",
        "body:$.a.b[0].password",
        "body:$.inputData['Flow.accessToken']",
    }


def test_camel_case_secret_keys_are_redacted(redactor: Redactor) -> None:
    doc = {"accessToken": "a", "clientSecret": "b", "refreshToken": "c", "apiKey": "d"}
    assert redactor.json(doc).value == dict.fromkeys(doc, REDACTED)


def test_object_under_a_sensitive_key_is_redacted_whole(redactor: Redactor) -> None:
    result = redactor.json({"credentials": {"id": "x", "secret": "y"}, "keys": ["k1", "k2"]})
    assert result.value == {"credentials": REDACTED, "keys": REDACTED}


def test_genesys_error_body_keeps_its_diagnosis(redactor: Redactor) -> None:
    body = {
        "message": "The flow input is invalid",
        "code": "bad.request",
        "status": 400,
        "messageWithParams": "Invalid value for {field}",
        "messageParams": {"field": "inputData"},
        "contextId": "c0ffee",
        "details": [{"errorCode": "invalid.value", "fieldName": "inputData.Flow.x"}],
        "errors": [],
        "limit": {"key": "org.app.user.rate.per.minute", "namespace": "platform", "value": 3000},
    }
    assert redactor.json(body) == Redacted(body, ())


def test_oauth_token_reply_keeps_type_and_expiry(redactor: Redactor) -> None:
    reply = {"access_token": "abc123", "token_type": "bearer", "expires_in": 86399}
    assert redactor.json(reply).value == {
        "access_token": REDACTED,
        "token_type": "bearer",
        "expires_in": 86399,
    }


def test_launch_payload_keeps_flow_fields(redactor: Redactor) -> None:
    launch = {"flowId": "f-1", "flowVersion": "3.0", "name": "run", "inputData": {"Flow.n": 1}}
    assert redactor.json(launch) == Redacted(launch, ())


def test_null_secret_stays_null_so_a_missing_token_is_visible(redactor: Redactor) -> None:
    assert redactor.json({"access_token": None}) == Redacted({"access_token": None}, ())


def test_json_redaction_leaves_the_input_untouched(redactor: Redactor) -> None:
    doc: dict[str, Any] = {"a": {"password": "p"}, "l": [{"token": "t"}]}
    snapshot = json.dumps(doc)
    redacted = redactor.json(doc).value
    assert json.dumps(doc) == snapshot
    redacted["a"]["x"] = 1
    assert "x" not in doc["a"]


def test_jwt_in_json_string_value_is_redacted(redactor: Redactor) -> None:
    result = redactor.json({"message": f"bad token {JWT}"}, where="response.body")
    assert result == Redacted({"message": "bad token [REDACTED]"}, ("response.body:$.message",))


def test_user_keys_apply_to_json_keys() -> None:
    result = Redactor(redact_keys=["Email"]).json({"email": "a@b.example", "emailVerified": True})
    assert result.value == {"email": REDACTED, "emailVerified": True}


def test_ten_thousand_level_nesting_does_not_overflow(redactor: Redactor) -> None:
    root: dict[str, Any] = {}
    node = root
    for _ in range(10_000):
        node["a"] = {}
        node = node["a"]
    node["password"] = "hunter2"
    result = redactor.json(root)
    assert "hunter2" not in repr(_shallow(result.value))
    assert result.paths and result.paths[0].startswith("body:$.a.a")
    json.dumps(result.value)  # stays serialisable by a recursive encoder


def test_ten_thousand_level_nested_lists_do_not_overflow(redactor: Redactor) -> None:
    root: list[Any] = []
    node = root
    for _ in range(10_000):
        child: list[Any] = []
        node.append(child)
        node = child
    node.append(f"Bearer {JWT}")
    result = redactor.json(root)
    json.dumps(result.value)
    assert JWT not in json.dumps(result.value)


def test_cyclic_structure_terminates(redactor: Redactor) -> None:
    doc: dict[str, Any] = {"name": "loop"}
    doc["self"] = doc
    result = redactor.json(doc)
    json.dumps(result.value)
    # Copied 128 levels deep (every level intact), then the rest replaced whole.
    level, depth = result.value, 0
    while isinstance(level, dict):
        assert level.keys() == {"name", "self"} and level["name"] == "loop"
        level, depth = level["self"], depth + 1
    assert (depth, level) == (128, REDACTED)
    assert result.paths == ("body:$" + ".self" * 128,)


def _shallow(value: Any) -> Any:
    """Walk down a deep single-key chain without recursion, returning the leaf."""
    while isinstance(value, dict) and len(value) == 1 and "a" in value:
        value = value["a"]
    return value


# -- form and bodies --------------------------------------------------------------------------


def test_token_endpoint_form_body_is_redacted(redactor: Redactor) -> None:
    body = "grant_type=client_credentials&client_id=x&client_secret=s3cr3t"
    result = redactor.form(body, where="request.body")
    assert result == Redacted(
        "grant_type=client_credentials&client_id=x&client_secret=[REDACTED]",
        ("request.body:$.client_secret",),
    )


def test_authorization_code_in_form_body_is_redacted(redactor: Redactor) -> None:
    body = "grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fapp%2Fcb"
    assert redactor.form(body).value == (
        "grant_type=authorization_code&code=[REDACTED]&redirect_uri=https%3A%2F%2Fapp%2Fcb"
    )


def test_form_body_dispatch_by_content_type(redactor: Redactor) -> None:
    body = b"grant_type=client_credentials&client_secret=s3cr3t"
    result = redactor.body(body, "application/x-www-form-urlencoded; charset=utf-8")
    assert result.value == "grant_type=client_credentials&client_secret=[REDACTED]"
    assert redactor.body(body, None).value == result.value


def test_json_body_is_reserialised_compactly_without_escaping(redactor: Redactor) -> None:
    body = json.dumps({"client_secret": "x", "message": "café"}, indent=2).encode()
    result = redactor.body(body, "application/json; charset=utf-8", where="request.body")
    assert result == Redacted(
        '{"client_secret":"[REDACTED]","message":"café"}', ("request.body:$.client_secret",)
    )


def test_vendor_json_and_untyped_json_bodies_are_parsed(redactor: Redactor) -> None:
    body = b'{"refresh_token": "r"}'
    expected = '{"refresh_token":"[REDACTED]"}'
    assert redactor.body(body, "application/problem+json").value == expected
    assert redactor.body(body, None).value == expected
    assert redactor.body(body, "text/plain").value == expected


def test_json_body_without_secrets_is_returned_as_sent(redactor: Redactor) -> None:
    body = b'{\n  "code": "bad.request",\n  "status": 400\n}'
    assert redactor.body(body, "application/json") == Redacted(body.decode(), ())


def test_unparseable_json_falls_back_to_text(redactor: Redactor) -> None:
    result = redactor.body(b'{"password": "hunter2", "cut": ', "application/json")
    assert result.value == '{"password": "[REDACTED]", "cut": '
    assert result.paths == ("body:key.password",)


def test_deep_json_text_is_redacted_without_raising(redactor: Redactor) -> None:
    body = '{"a":' * 10_000 + '{"password":"hunter2"}' + "}" * 10_000
    result = redactor.body(body.encode(), "application/json")
    assert "hunter2" not in result.value


def test_invalid_utf8_is_replaced_not_raised(redactor: Redactor) -> None:
    result = redactor.body(b"bad \xff\xfe bytes access_token=abc", "text/plain")
    assert result.value == "bad \ufffd\ufffd bytes access_token=[REDACTED]"
    json_result = redactor.body(b'{"m": "\xff", "token": "t"}', "application/json")
    assert json_result.value == '{"m":"\ufffd","token":"[REDACTED]"}'


def test_plain_text_body_is_scrubbed(redactor: Redactor) -> None:
    result = redactor.body(f"<html>token {JWT}</html>".encode(), "text/html")
    assert result == Redacted("<html>token [REDACTED]</html>", ("body:jwt",))


# -- property: no secret survives -------------------------------------------------------------

_SECRET = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=6, max_size=40
)
_SENSITIVE_KEYS = st.sampled_from(
    ["access_token", "client_secret", "refreshToken", "apiKey", "password", "jwt", "private_key"]
)
_SENSITIVE_HEADERS = st.sampled_from(
    ["Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token"]
)
_SENSITIVE_QUERY = st.sampled_from(["access_token", "code", "sig", "X-Amz-Signature", "apikey"])


def _grams(secret: str) -> set[str]:
    return {secret[i : i + 6] for i in range(len(secret) - 5)}


def _visible(result: Redacted) -> str:
    """Everything a sink could show: the value and the paths."""
    value = result.value
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return shown + "\n" + "\n".join(result.paths)


def _assert_no_secret(secret: str, result: Redacted, skeleton: Redacted) -> None:
    """No 6-character piece of ``secret`` may show, except text that shows without it too."""
    shown, baseline = _visible(result), _visible(skeleton)
    encodings = {secret, quote(secret, safe=""), json.dumps(secret, ensure_ascii=False)[1:-1]}
    for form in encodings:
        for gram in _grams(form):
            assert gram not in shown or gram in baseline, (gram, shown)


_PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(secret=_SECRET, key=_SENSITIVE_KEYS, depth=st.integers(0, 5))
def test_property_secret_under_sensitive_json_key_never_survives(
    secret: str, key: str, depth: int
) -> None:
    redactor = Redactor()

    def build(value: str) -> dict[str, Any]:
        doc: dict[str, Any] = {key: value, "flowId": "f"}
        for i in range(depth):
            doc = {f"level{i}": [doc]}
        return doc

    skeleton = redactor.json(build("x"))
    _assert_no_secret(secret, redactor.json(build(secret)), skeleton)
    body = redactor.body(json.dumps(build(secret)).encode(), "application/json")
    _assert_no_secret(secret, body, skeleton)


@_PROPERTY
@given(secret=_SECRET, name=_SENSITIVE_HEADERS)
def test_property_secret_in_sensitive_header_never_survives(secret: str, name: str) -> None:
    redactor = Redactor()
    value = f"Bearer {secret}" if "authorization" in name.lower() else secret
    skeleton = redactor.headers([(name, "Bearer x")])
    _assert_no_secret(secret, redactor.headers([(name, value)]), skeleton)


@_PROPERTY
@given(secret=_SECRET, name=_SENSITIVE_QUERY)
def test_property_secret_in_sensitive_query_param_never_survives(secret: str, name: str) -> None:
    redactor = Redactor()
    template = f"https://api.mypurecloud.com/api/v2/flows/executions?pageSize=25&{name}="
    skeleton = redactor.url(template + "x")
    _assert_no_secret(secret, redactor.url(template + quote(secret, safe="")), skeleton)


@_PROPERTY
@given(secret=_SECRET, key=_SENSITIVE_KEYS)
def test_property_secret_in_form_body_never_survives(secret: str, key: str) -> None:
    redactor = Redactor()
    skeleton = redactor.form(urlencode({"grant_type": "client_credentials", key: "x"}))
    body = urlencode({"grant_type": "client_credentials", key: secret})
    result = redactor.body(body.encode(), "application/x-www-form-urlencoded")
    _assert_no_secret(secret, result, skeleton)


@_PROPERTY
@given(
    secret=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        min_size=8,
        max_size=60,
    )
)
def test_property_bearer_token_in_text_never_survives(secret: str) -> None:
    # Short all-lower or Title-case words read as prose ("bearer token"), so they are kept.
    assume(not (len(secret) < 16 and secret.isalpha() and (secret.islower() or secret.istitle())))
    redactor = Redactor()
    template = "call failed with Authorization Bearer {} (401)"
    skeleton = redactor.text(template.format("x1"))
    _assert_no_secret(secret, redactor.text(template.format(secret)), skeleton)


# -- payment and personal data (redact_pii, on by default) ------------------------------------

VISA = "4111111111111111"


@pytest.mark.parametrize(
    "name",
    [
        "Flow.cardNumber",
        "card_number",
        "CardNo",
        "CCNumber",
        "PAN",
        "Flow.creditCard",
        "CVV2",
        "cvc",
        "Flow.securityCode",
        "pin",
        "Flow.PIN",
        "pinCode",
        "cardPin",
        "ssn",
        "Flow.SSN",
        "customer_ssn",
        "socialSecurityNumber",
        "securityAnswer",
        "Flow.security_question_answer",
        "mothersMaidenName",
    ],
)
def test_payment_and_personal_keys_are_sensitive_by_default(redactor: Redactor, name: str) -> None:
    assert redactor.is_sensitive_key(name)
    assert redactor.json({name: "4921"}).value == {name: REDACTED}


@pytest.mark.parametrize(
    "name",
    [
        "pinned",
        "isPinned",
        "spinner",
        "happiness",
        "span_id",
        "company",
        "panel",
        "shipping",
        "opinion",
        "creditCardType",
        "cardHolderName",
        "flowExecutionId",
        "correlationId",
        "fieldName",
    ],
)
def test_words_that_only_contain_pin_pan_or_ssn_are_not_sensitive(
    redactor: Redactor, name: str
) -> None:
    assert not redactor.is_sensitive_key(name)


def test_payment_keys_are_plain_keys_with_redact_pii_off() -> None:
    off = Redactor(redact_pii=False)
    doc = {"Flow.pin": "4921", "Flow.cvv": "123", "Flow.cardNumber": VISA, "Flow.note": VISA}
    assert off.json(doc) == Redacted(doc, ())
    assert off.text(f"card {VISA}").value == f"card {VISA}"


@pytest.mark.parametrize(
    "card",
    [
        VISA,
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5555555555554444",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "2223003122003222",
        "4000000000006",  # 13 digits
        "1234567812345670",  # Luhn-valid, whatever its issuer
    ],
)
def test_luhn_valid_card_numbers_are_redacted_in_free_text(redactor: Redactor, card: str) -> None:
    assert redactor.text(f"please charge {card} today").value == f"please charge {REDACTED} today"


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # a Luhn-invalid 16-digit order number
        "4111 1111 1111 1112",
        "1732982001123",  # Unix time in milliseconds
        "1732982001123456",  # ... in microseconds
        "1732982001123456789",  # ... in nanoseconds
        "20261130163321",  # compact date-time
        "6e1a4b2c-0c7d-4d59-9f6e-2b0a1d2f3c4d",
        "7b3a5c1e-0000-4f00-8000-1234567890ab",  # UUID with a Luhn-valid digit run inside
        "12345678-1234-1234-1234-123456789012",
        "+44 20 7946 0958",
        "0000000000000000",
    ],
)
def test_order_numbers_timestamps_ids_and_phone_numbers_survive(
    redactor: Redactor, number: str
) -> None:
    text = f"order {number} shipped"
    assert redactor.text(text) == Redacted(text, ())


def test_card_numbers_are_redacted_in_request_bodies_and_error_messages(redactor: Redactor) -> None:
    sent = {
        "flowId": "f",
        "inputData": {"Flow.notes": f"card {VISA}", "Flow.orderNumber": "4111111111111112"},
    }
    body = redactor.body(json.dumps(sent).encode(), "application/json", where="request.body")
    assert json.loads(body.value)["inputData"] == {
        "Flow.notes": f"card {REDACTED}",
        "Flow.orderNumber": "4111111111111112",
    }
    assert body.paths == ("request.body:$.inputData['Flow.notes']",)
    error = {"message": f"Flow.notes: card {VISA} declined", "code": "bad.request"}
    assert redactor.json(error).value["message"] == f"Flow.notes: card {REDACTED} declined"


def test_card_number_sent_as_a_json_number_is_redacted(redactor: Redactor) -> None:
    doc = {"amount": 4111111111111111, "order": 4111111111111112, "count": 3}
    assert redactor.json(doc) == Redacted(
        {"amount": REDACTED, "order": 4111111111111112, "count": 3}, ("body:$.amount",)
    )


def test_a_spaced_card_number_after_a_sensitive_key_goes_whole(redactor: Redactor) -> None:
    text = "Flow.cardNumber: 4111 1111 1111 1111, expiry 12/29"
    assert redactor.text(text).value == f"Flow.cardNumber: {REDACTED}, expiry 12/29"


def test_headers_naming_payment_data_are_redacted(redactor: Redactor) -> None:
    assert redactor.header_value("X-Card-Number", VISA) == REDACTED
    assert redactor.header_value("X-Spinner", "on") == "on"


# -- echoes: what the request had redacted, removed from the response -------------------------

LAUNCH_URL = "https://api.mypurecloud.com/api/v2/flows/executions"


def _launch(redactor: Redactor, inputs: dict[str, Any], **kwargs: Any) -> Any:
    body = json.dumps({"flowId": "f-1", "inputData": inputs}).encode()
    return redactor.for_call(
        kwargs.pop("url", LAUNCH_URL),
        kwargs.pop("headers", [("Content-Type", "application/json")]),
        body,
        "application/json",
    )


def test_a_pin_quoted_back_in_every_genesys_error_shape_is_removed(redactor: Redactor) -> None:
    call = _launch(redactor, {"Flow.pin": "4921", "Flow.customerId": "c-42"})
    error = {
        "message": "Flow.pin: expected number, got string '4921'",
        "code": "bad.request",
        "contextId": "ctx-4921-a",
        "messageWithParams": "invalid value {value} for {field}",
        "messageParams": {"field": "Flow.pin", "value": "4921"},
        "details": [{"fieldName": "inputData.Flow.pin", "entityName": "4921"}],
        "errors": [{"message": "pin 4921 rejected", "code": "invalid.value"}],
    }
    result = call.body(json.dumps(error), "application/json", where="response.body")
    assert json.loads(result.value) == {
        **error,
        "message": f"Flow.pin: {REDACTED} number, got string '{REDACTED}'",
        "messageParams": {"field": "Flow.pin", "value": REDACTED},
        "details": [{"fieldName": "inputData.Flow.pin", "entityName": REDACTED}],
        "errors": [{"message": f"pin {REDACTED} rejected", "code": "invalid.value"}],
    }
    assert result.paths == (
        "response.body:$.message",
        "response.body:$.messageParams.value",
        "response.body:$.details[0].entityName",
        "response.body:$.errors[0].message",
    )
    assert call.request_body.value == (
        f'{{"flowId":"f-1","inputData":{{"Flow.pin":"{REDACTED}","Flow.customerId":"c-42"}}}}'
    )


def test_a_short_cvv_is_removed_only_where_the_response_names_its_key(redactor: Redactor) -> None:
    call = _launch(redactor, {"Flow.cvv": "123"})
    assert (
        call.text("value 123 of Flow.cvv is invalid").value
        == f"value {REDACTED} of Flow.cvv is invalid"
    )
    assert call.text("CVV 123 rejected").value == f"CVV {REDACTED} rejected"
    assert call.text("123 items in queue 4").value == "123 items in queue 4"
    params = call.json({"field": "inputData.Flow.cvv", "value": "123", "count": "123"}).value
    assert params == {"field": "inputData.Flow.cvv", "value": REDACTED, "count": REDACTED}
    other = call.json({"field": "inputData.Flow.queue", "value": "123"}).value
    assert other == {"field": "inputData.Flow.queue", "value": "123"}


def test_numbers_are_removed_only_as_whole_numbers(redactor: Redactor) -> None:
    call = _launch(redactor, {"Flow.pin": "4921", "Flow.accountPin": "48213377"})
    kept = (
        "ctx-4921-a c0a84921 v4921.2 2026-4921 0000 0000 0000 4921 order 9948213377 id 48213377123"
    )
    assert call.text(kept) == Redacted(kept, ())
    assert call.text("got 4921, then 48213377.").value == f"got {REDACTED}, then {REDACTED}."
    assert call.json({"pin": 4921, "count": 49210}).value == {"pin": REDACTED, "count": 49210}


def test_header_query_and_userinfo_secrets_echoed_back_are_removed(redactor: Redactor) -> None:
    call = redactor.for_call(
        "https://svc:Pa55-word-77@api.mypurecloud.com/api/v2/flows?access_token=Q7acc3ssT0ken",
        [("X-Api-Key", "Q7k3yValue99"), ("Cookie", "theme=dark; session=Q7s3ssion00")],
    )
    text = (
        "key Q7k3yValue99 unknown; session Q7s3ssion00 expired; token Q7acc3ssT0ken; "
        "password Pa55-word-77 wrong; theme dark"
    )
    assert call.text(text).value == (
        f"key {REDACTED} unknown; session {REDACTED} expired; token {REDACTED}; "
        f"password {REDACTED} wrong; theme {REDACTED}"
    )
    assert call.request_url.value == (
        f"https://{REDACTED}@api.mypurecloud.com/api/v2/flows?access_token={REDACTED}"
    )
    assert call.header_value("X-Request-Echo", "Q7k3yValue99") == REDACTED


def test_the_secret_inside_a_basic_credential_is_removed_from_an_oauth_error(
    redactor: Redactor,
) -> None:
    credential = base64.b64encode(b"client-7:Q7cl1entSecret").decode()
    call = redactor.for_call(
        "https://login.mypurecloud.com/oauth/token",
        [("Authorization", f"Basic {credential}")],
        b"grant_type=refresh_token&refresh_token=Q7refr3sh-token",
        "application/x-www-form-urlencoded",
    )
    error = {
        "error": "invalid_client",
        "error_description": "client secret 'Q7cl1entSecret' and token Q7refr3sh-token refused",
    }
    assert call.json(error).value["error_description"] == (
        f"client secret '{REDACTED}' and token {REDACTED} refused"
    )


def test_escaped_and_encoded_echoes_are_removed(redactor: Redactor) -> None:
    call = _launch(redactor, {"password": 'Q7"quoted/and&more'})
    raw = '{"message": "password \\"Q7\\\\\\"quoted\\/and\\u0026more\\" rejected"}'
    assert "Q7" not in call.body(raw, "text/plain").value
    assert "Q7" not in call.text("p=Q7%22quoted%2Fand%26more").value


def test_values_found_by_rules_and_user_patterns_are_remembered() -> None:
    redactor = Redactor(
        redact_keys=("customerEmail",), redact_patterns=(r"acct=(?P<secret>\d{8})",)
    )
    call = _launch(
        redactor,
        {
            "Flow.customerEmail": "jane@example.invalid",
            "Flow.notes": "acct=48213377 card 4111111111111111",
        },
    )
    text = "no account 48213377 for jane@example.invalid, card 4111-1111-1111-1111"
    assert call.text(text).value == f"no account {REDACTED} for {REDACTED}, card {REDACTED}"


def test_echoes_of_one_call_do_not_touch_another(redactor: Redactor) -> None:
    first = _launch(redactor, {"Flow.pin": "4921"})
    second = _launch(redactor, {"Flow.pin": "7777"})
    assert first.text("got 4921").value == f"got {REDACTED}"
    assert second.text("got 4921").value == "got 4921"
    assert redactor.text("got 4921").value == "got 4921"


def test_echo_removal_grows_linearly_with_the_response() -> None:
    redactor = Redactor()
    inputs = {"Flow.pin": "4921", "Flow.cvv": "123", "Flow.cardNumber": "4111 1111 1111 1111"}
    call = _launch(redactor, inputs, headers=[("Authorization", "Bearer Q7t0ken-abcdef-99")])

    def body(details: int) -> str:
        detail = {
            "fieldName": "inputData.Flow.cvv",
            "entityName": "123",
            "message": "pin 4921, card 4111 1111 1111 1111, token Q7t0ken-abcdef-99",
        }
        return json.dumps({"code": "bad.request", "details": [detail] * details})

    small, big = body(400), body(4000)
    redacted = call.body(big, "application/json", where="response.body").value
    assert not any(s in redacted for s in ("4921", '"123"', "4111", "Q7t0ken"))
    assert_cost_grows_at_most(
        lambda: call.body(small, "application/json"),
        lambda: call.body(big, "application/json"),
        growth=10,
    )


# -- a JSON body with nothing to redact, told from its text ---------------------------------------
# ``Redactor.body`` tells a plain JSON body from its text, without walking the parsed document.
# Each case below is one the text alone must not pass as plain.


def test_a_card_number_sent_as_a_json_number_is_redacted(redactor: Redactor) -> None:
    result = redactor.body(b'{"amount": 12, "account": 4111111111111111}', "application/json")
    assert result == Redacted('{"amount":12,"account":"[REDACTED]"}', ("body:$.account",))


def test_a_sensitive_key_with_a_plain_value_is_redacted(redactor: Redactor) -> None:
    result = redactor.body(b'{"code": "bad.request", "password": "hunter2"}', "application/json")
    assert result == Redacted(
        '{"code":"bad.request","password":"[REDACTED]"}', ("body:$.password",)
    )


def test_a_key_spelt_with_escapes_is_read_as_the_parser_reads_it(redactor: Redactor) -> None:
    body = b'{"pass\\u0077ord": "hunter2", "m": "a \\"quoted\\" word"}'
    result = redactor.body(body, "application/json")
    assert result == Redacted(
        '{"password":"[REDACTED]","m":"a \\"quoted\\" word"}', ("body:$.password",)
    )


def test_a_body_nested_past_the_depth_bound_is_cut(redactor: Redactor) -> None:
    body = "[" * 130 + '"x"' + "]" * 130
    result = redactor.body(body.encode(), "application/json")
    assert result.value == "[" * 128 + '"[REDACTED]"' + "]" * 128
    assert result.paths == ("body:$" + "[0]" * 128,)


def test_a_value_holding_a_pair_is_redacted_after_harmless_bodies(redactor: Redactor) -> None:
    plain = b'{"code": "bad.request", "message": "flow not found"}'
    assert redactor.body(plain, "application/json") == Redacted(plain.decode(), ())
    echoed = b'{"code": "bad.request", "message": "rejected access_token=Q7abc123"}'
    assert redactor.body(echoed, "application/json") == Redacted(
        '{"code":"bad.request","message":"rejected access_token=[REDACTED]"}',
        ("body:$.message",),
    )
    assert redactor.body(plain, "application/json") == Redacted(plain.decode(), ())


_JSON_KEYS = st.sampled_from(
    [
        "code",
        "message",
        "fieldName",
        "flowId",
        "details",
        "limit",
        "key",
        "token_type",
        "password",
        "pass_word",
        "apiKey",
        "Flow.pin",
        "Flow.cardNumber",
        "cvv",
        "pinned",
        'we"ird',
        "back\\slash",
        "naïve",
    ]
)
_JSON_STRINGS = st.sampled_from(
    [
        "",
        "bad.request",
        "inputData.Flow.cvv",
        "Order callback",
        "access_token=Q7abc123",
        "Bearer Q7t0ken-abcdef-99",
        JWT,
        "4111 1111 1111 1111",
        "4111111111111112",
        "order 1234567890123456",
        'a "quoted" word',
        "line\nbreak",
        "naïve café",
        "password",
        "limit.key",
    ]
) | st.text(max_size=12)
_JSON_NUMBERS = st.sampled_from(
    [0, 400, 4111111111111111, 4111111111111112, 1700000000000, -4111111111111111, 4.5e15, 1.5]
)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | _JSON_NUMBERS | _JSON_STRINGS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_JSON_KEYS | st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_WARM = Redactor()


@_PROPERTY
@given(document=_JSON_VALUES, ascii_only=st.booleans(), indent=st.sampled_from([None, 2]))
def test_property_a_json_body_is_redacted_as_its_document_is(
    document: Any, ascii_only: bool, indent: int | None
) -> None:
    """``body`` on JSON text equals the walk of the parsed document: as sent when the walk
    redacts nothing, else the walk's result re-serialised compactly. Checked with a fresh
    redactor and with one that has seen every earlier example."""
    text = json.dumps(document, ensure_ascii=ascii_only, indent=indent)
    walked = Redactor().json(json.loads(text), where="body")
    expected = (
        Redacted(text, ())
        if not walked.paths
        else Redacted(
            json.dumps(walked.value, ensure_ascii=False, separators=(",", ":")), walked.paths
        )
    )
    assert Redactor().body(text.encode(), "application/json") == expected
    assert _WARM.body(text.encode(), "application/json") == expected


_ECHOED_INPUTS = st.fixed_dictionaries(
    {
        "Flow.pin": st.sampled_from(["4921", "0000", "12345678"]),
        "Flow.cvv": st.sampled_from(["123", "9"]),
        "password": st.sampled_from(["Q7hunter2", "x"]),
        "Flow.notes": st.sampled_from(["card 4111 1111 1111 1111", "call me", ""]),
    }
)
_ECHO_STRINGS = st.sampled_from(
    [
        "Flow.pin: expected number, got string '4921'",
        "4921",
        "123",
        "cvv 123",
        "inputData.Flow.cvv",
        "password Q7hunter2 rejected",
        "Q7hunter2",
        "card 4111 1111 1111 1111 declined",
        "41111111111111111",
        "ctx-4921-a",
        "bad.request",
        "pin 4921, again 4921, card 4111 1111 1111 1111 and Q7hunter2",
        "cvv 123 / cvv 123",
    ]
)
_ECHO_DOCUMENTS = st.recursive(
    st.none() | st.sampled_from([4921, 123, 12345678, 400]) | _ECHO_STRINGS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["message", "fieldName", "entityName", "cvv", "value", "Flow.pin"])
        | _ECHO_STRINGS,
        children,
        max_size=4,
    ),
    max_leaves=12,
)


@_PROPERTY
@given(inputs=_ECHOED_INPUTS, document=_ECHO_DOCUMENTS)
def test_property_an_echoing_json_body_is_redacted_as_its_document_is(
    inputs: dict[str, str], document: Any
) -> None:
    """A response body that quotes the request: ``body`` on its text equals the walk of the
    parsed document by the same call's redaction (re-serialised when it redacted anything)."""
    redactor = Redactor()
    text = json.dumps(document)
    walked = _launch(redactor, inputs).json(json.loads(text), where="response.body")
    expected = (
        Redacted(text, ())
        if not walked.paths
        else Redacted(
            json.dumps(walked.value, ensure_ascii=False, separators=(",", ":")), walked.paths
        )
    )
    shown = _launch(redactor, inputs).body(text.encode(), "application/json", where="response.body")
    assert shown == expected


def test_a_value_echoed_hundreds_of_times_is_removed_everywhere(redactor: Redactor) -> None:
    call = _launch(redactor, {"Flow.pin": "4921", "Flow.cvv": "123"})
    details = [{"fieldName": "inputData.Flow.cvv", "entityName": "123", "message": "pin 4921"}]
    body = json.dumps({"code": "bad.request", "details": details * 300})
    result = call.body(body, "application/json", where="response.body")
    assert json.loads(result.value)["details"] == [
        {"fieldName": "inputData.Flow.cvv", "entityName": REDACTED, "message": f"pin {REDACTED}"}
    ] * 300
    assert len(result.paths) == 600


@_PROPERTY
@given(
    document=_JSON_VALUES,
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "utf-32-be"]),
    ascii_only=st.booleans(),
)
def test_property_a_request_body_is_redacted_as_its_document_is(
    document: Any, encoding: str, ascii_only: bool
) -> None:
    """A call's JSON request body, parsed from its bytes (in any encoding ``json.loads``
    detects), shows what the walk of its document shows, and remembers nothing for the echo
    rule when nothing was redacted."""
    body = json.dumps(document, ensure_ascii=ascii_only).encode(encoding)
    parsed = json.loads(body)
    walked = Redactor().json(parsed, where="request.body")
    call = Redactor().for_call(LAUNCH_URL, [], body, "application/json", parsed)
    shown = call.request_body
    assert shown is not None
    assert shown.paths == walked.paths
    if walked.paths:
        assert json.loads(shown.value) == walked.value
    else:
        assert shown.value == body.decode("utf-8", errors="replace")
        assert call.request_body_secrets() == ()


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32-be", "utf-16"])
def test_a_card_number_in_a_utf16_or_utf32_request_body_is_redacted(encoding: str) -> None:
    """``json.loads`` reads these bytes as UTF-16/32; read as UTF-8 they would hide the card
    number between NUL characters."""
    body = json.dumps({"flowId": "f-1", "amount": 4111111111111111}).encode(encoding)
    call = Redactor().for_call(LAUNCH_URL, [], body, "application/json", json.loads(body))
    assert call.request_body == Redacted(
        '{"flowId":"f-1","amount":"[REDACTED]"}', ("request.body:$.amount",)
    )
