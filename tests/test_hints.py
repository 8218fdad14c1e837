"""Launch-payload diagnosis: each common mistake is named, a correct payload is left alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowscope._hints import (
    HINT_CODES,
    MAX_REQUEST_BYTES,
    Hint,
    diagnose_launch,
    diagnose_payload,
)

from .complexity import assert_cost_grows_at_most

FLOW = "9b1f3c2e-6a4d-4e8b-9f21-3c7d5a0e8b14"
GOOD = {"flowId": FLOW, "inputData": {"Flow.customerId": "42"}}

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "Flow.customerId": {"$ref": "#/definitions/archString"},
        "Flow.count": {"$ref": "#/definitions/archInteger"},
        "Flow.vip": {"$ref": "#/definitions/archBoolean"},
        "Flow.amount": {"$ref": "#/definitions/archDecimal"},
        "Flow.when": {"$ref": "#/definitions/archDateTime"},
        "Flow.context": {"$ref": "#/definitions/archJson"},
        "Flow.tags": {"type": "array", "items": {"$ref": "#/definitions/archString"}},
        "Flow.plain": {"type": ["null", "integer"]},
    },
    "definitions": {
        "archString": {"type": ["null", "string"], "maxLength": 32000},
        "archInteger": {"type": ["null", "integer", "string"]},
        "archBoolean": {"type": ["null", "boolean"]},
        "archDecimal": {"type": ["null", "number"]},
        "archDateTime": {"type": ["null", "string"], "format": "date-time"},
        "archJson": {"type": ["null", "object"]},
    },
}


def _launch(payload: Any, **kwargs: Any) -> list[Hint]:
    return diagnose_launch(json.dumps(payload).encode(), **kwargs)


def _codes(hints: list[Hint]) -> list[str]:
    return [h.code for h in hints]


def _only(hints: list[Hint], code: str) -> Hint:
    matching = [h for h in hints if h.code == code]
    assert len(matching) == 1, hints
    return matching[0]


def test_correct_payload_gives_no_hints() -> None:
    assert _launch(GOOD, content_type="application/json; charset=utf-8") == []
    assert diagnose_payload(GOOD) == []
    full = {"flowId": FLOW, "flowVersion": "3.0", "name": "run 1", "inputData": {}}
    assert diagnose_payload(full, input_schema=SCHEMA) == []


def test_correct_typed_inputs_pass_the_schema() -> None:
    inputs = {
        "Flow.customerId": "42",
        "Flow.count": "157",
        "Flow.vip": False,
        "Flow.amount": 12.5,
        "Flow.when": "2024-05-01T12:00:00.000Z",
        "Flow.context": {"any": ["thing"]},
        "Flow.tags": ["a", None],
        "Flow.plain": None,
    }
    assert diagnose_payload({"flowId": FLOW, "inputData": inputs}, input_schema=SCHEMA) == []


def test_hint_codes_are_the_documented_stable_set() -> None:
    assert set(HINT_CODES) == {
        "unknown-root-key",
        "missing-flow-id",
        "input-not-object",
        "input-key-prefix",
        "flow-id-in-path",
        "content-type",
        "not-json",
        "body-too-large",
        "input-undeclared",
        "input-type",
        "input-nested",
        "flow-id-not-uuid",
    }
    assert MAX_REQUEST_BYTES == 512_000


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("data", "inputData"),
        ("parameters", "inputData"),
        ("execution_context", "inputData"),
        ("initial_attributes", "participant data"),
        ("routingData", "conversation routing"),
        ("flow_id", "did you mean 'flowId'?"),
        ("flowID", "did you mean 'flowId'?"),
        ("FlowId", "did you mean 'flowId'?"),
        ("input_data", "did you mean 'inputData'?"),
        ("inputs", "did you mean 'inputData'?"),
        ("flow_version", "did you mean 'flowVersion'?"),
        ("Flow.customerId", "move it into 'inputData'"),
        ("somethingElse", "takes only flowId, flowVersion, inputData and name"),
    ],
)
def test_unknown_root_key_is_named_with_what_to_do(key: str, expected: str) -> None:
    hint = _only(diagnose_payload({"flowId": FLOW, key: {}}), "unknown-root-key")
    assert hint.field == key
    assert f"'{key}'" in hint.message
    assert expected in hint.message


def test_missing_flow_id_is_reported() -> None:
    hint = _only(_launch({"inputData": {"Flow.a": "1"}}), "missing-flow-id")
    assert hint.field == "flowId"
    assert "no 'flowId'" in hint.message


def test_missing_flow_id_points_at_the_near_miss_key() -> None:
    hint = _only(_launch({"flow_id": FLOW}), "missing-flow-id")
    assert "there is 'flow_id': rename it to 'flowId'" in hint.message


@pytest.mark.parametrize("value", ["", "   ", None, 42, ["abc"], {"id": "abc"}])
def test_flow_id_that_is_not_a_non_empty_string_is_reported(value: object) -> None:
    assert _codes(_launch({"flowId": value})) == ["missing-flow-id"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/flows/0b9d7f6e-1c2a-4f1e-9f0a-3a2b1c0d9e8f/executions",
        "/api/v2/flows/executions/0b9d7f6e-1c2a-4f1e-9f0a-3a2b1c0d9e8f",
        "https://api.mypurecloud.com/api/v2/flows/0b9d7f6e-1c2a-4f1e-9f0a-3a2b1c0d9e8f/executions?x=1",
    ],
)
def test_flow_id_in_path_says_it_belongs_in_the_body(path: str) -> None:
    hints = _launch({"inputData": {}}, path=path)
    # One mistake, one hint: the id is in the path, so the body has none.
    assert _codes(hints) == ["flow-id-in-path"]
    assert '{"flowId": "0b9d7f6e-1c2a-4f1e-9f0a-3a2b1c0d9e8f"}' in hints[0].message


def test_launch_path_itself_is_not_a_flow_id_in_path() -> None:
    assert _launch(GOOD, path="/api/v2/flows/executions/") == []
    assert _launch(GOOD, path="https://api.mypurecloud.de/api/v2/flows/executions") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"Flow.a": 1}', "string holding JSON"),
        ([{"name": "Flow.a", "value": 1}], "name/value pairs"),
        ("plain", "JSON string"),
        (7, "JSON integer"),
    ],
)
def test_input_data_that_is_not_an_object_is_reported(value: object, expected: str) -> None:
    hint = _only(_launch({"flowId": FLOW, "inputData": value}), "input-not-object")
    assert expected in hint.message
    assert hint.field == "inputData"


def test_input_key_without_flow_prefix_suggests_the_prefixed_name() -> None:
    hint = _only(_launch({"flowId": FLOW, "inputData": {"customerId": "42"}}), "input-key-prefix")
    assert "did you mean 'Flow.customerId'?" in hint.message
    assert hint.field == "inputData.customerId"


def test_input_key_with_prefix_in_the_wrong_case_is_reported() -> None:
    hint = _only(diagnose_payload({"flowId": FLOW, "inputData": {"flow.x": 1}}), "input-key-prefix")
    assert "did you mean 'Flow.x'?" in hint.message


def test_input_key_prefix_hints_are_capped() -> None:
    inputs = {f"key{i}": i for i in range(500)}
    hints = diagnose_payload({"flowId": FLOW, "inputData": inputs})
    assert len(hints) == 21
    assert hints[-1].message.startswith("and 480 more input key(s)")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/xml"]
)
def test_content_type_other_than_json_is_reported(content_type: str) -> None:
    hint = _only(_launch(GOOD, content_type=content_type), "content-type")
    assert "application/json" in hint.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"flowId": FLOW,}', "not valid JSON"),
        (b"flowId=abc&inputData=x", "form-encoded"),
        (b"", "empty body"),
        (b'["abc"]', "JSON array"),
        (b'"abc"', "JSON string"),
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
    ],
)
def test_body_that_is_not_a_json_object_is_reported(body: bytes, expected: str) -> None:
    hint = _only(diagnose_launch(body), "not-json")
    assert expected in hint.message


def test_captured_prefix_of_a_larger_body_is_not_reported_as_bad_json() -> None:
    assert diagnose_launch(b'{"flowId": "ab', body_size=2_000) == []


def test_unknown_body_gives_only_request_level_hints() -> None:
    assert diagnose_launch(None, content_type="application/json") == []
    assert _codes(diagnose_launch(None, body_size=600_000)) == ["body-too-large"]


def test_body_over_the_platform_limit_is_reported() -> None:
    payload = {"flowId": FLOW, "inputData": {"Flow.blob": "x" * MAX_REQUEST_BYTES}}
    hint = _only(_launch(payload), "body-too-large")
    assert "512,000" in hint.message
    assert _launch({"flowId": FLOW, "inputData": {"Flow.blob": "x" * 1000}}) == []


def test_input_not_declared_by_the_schema_is_reported_with_a_suggestion() -> None:
    payload = {"flowId": FLOW, "inputData": {"Flow.customerID": "1", "Flow.custmerId": "2"}}
    hints = diagnose_payload(payload, input_schema=SCHEMA)
    assert _codes(hints) == ["input-undeclared", "input-undeclared"]
    assert "did you mean 'Flow.customerId'? Input names are case-sensitive" in hints[0].message
    assert "did you mean 'Flow.customerId'?" in hints[1].message
    assert hints[1].field == "inputData.Flow.custmerId"


def test_schema_that_allows_extra_properties_reports_no_undeclared_input() -> None:
    schema = {**SCHEMA, "additionalProperties": True}
    assert (
        diagnose_payload({"flowId": FLOW, "inputData": {"Flow.extra": 1}}, input_schema=schema)
        == []
    )


def test_flow_without_inputs_reports_any_input_as_undeclared() -> None:
    schema = {"type": "object", "additionalProperties": False}
    hint = _only(
        diagnose_payload({"flowId": FLOW, "inputData": {"Flow.x": 1}}, input_schema=schema),
        "input-undeclared",
    )
    assert "declares no inputs" in hint.message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("Flow.customerId", 42, "archString"),
        ("Flow.customerId", "x" * 32_001, "32,000-character limit"),
        ("Flow.count", "12a", "archInteger"),
        ("Flow.count", "12345678901234567", "archInteger"),
        ("Flow.count", 10**15, "range"),
        ("Flow.count", 1.5, "archInteger"),
        ("Flow.vip", "true", 'send true, not "true"'),
        ("Flow.amount", "12.5", "send a JSON number"),
        ("Flow.when", "yesterday", "ISO-8601"),
        ("Flow.context", "{}", "archJson"),
        ("Flow.context", [1], "archJson"),
        ("Flow.tags", ["a", 1], "item [1]"),
        ("Flow.tags", ["a"] * 2_001, "2,001 items"),
        ("Flow.plain", "7", "null or integer: send a JSON number"),
    ],
)
def test_value_of_the_wrong_type_is_reported(key: str, value: object, expected: str) -> None:
    payload = {"flowId": FLOW, "inputData": {key: value}}
    hint = _only(diagnose_payload(payload, input_schema=SCHEMA), "input-type")
    assert expected in hint.message
    assert hint.field == f"inputData.{key}"


def test_input_type_message_does_not_quote_the_value() -> None:
    payload = {"flowId": FLOW, "inputData": {"Flow.count": "hunter2-secret"}}
    hint = _only(diagnose_payload(payload, input_schema=SCHEMA), "input-type")
    assert "hunter2" not in hint.message


def test_arch_collection_type_named_by_x_arch_type_is_checked() -> None:
    schema = {"properties": {"Flow.ids": {"x-arch-type": "archIntegerCollection"}}}
    ok = {"flowId": FLOW, "inputData": {"Flow.ids": [1, "2", None]}}
    bad = {"flowId": FLOW, "inputData": {"Flow.ids": [1, "two"]}}
    assert diagnose_payload(ok, input_schema=schema) == []
    assert "item [1]" in _only(diagnose_payload(bad, input_schema=schema), "input-type").message


def test_every_hint_code_fires_on_its_seed_mistake() -> None:
    seen: set[str] = set()
    seen.update(_codes(_launch({"data": {}}, path="/api/v2/flows/abc/executions")))
    seen.update(_codes(_launch({"flowId": FLOW, "inputData": []}, content_type="text/plain")))
    seen.update(_codes(_launch({"flowId": FLOW, "inputData": {"customerId": 1}})))
    seen.update(_codes(diagnose_launch(b"nope", body_size=MAX_REQUEST_BYTES + 1)))
    seen.update(_codes(diagnose_launch(b"nope")))
    seen.update(_codes(_launch({"inputData": {}})))
    seen.update(_codes(_launch({"flowId": "Order Status Lookup", "inputData": {"Flow": {"a": 1}}})))
    payload = {"flowId": FLOW, "inputData": {"Flow.nope": 1, "Flow.count": True}}
    seen.update(_codes(diagnose_payload(payload, input_schema=SCHEMA)))
    assert seen == set(HINT_CODES)


def _huge_payload(keys: int) -> dict[str, Any]:
    inputs = {f"key{i}": "v" for i in range(keys)}
    roots = {f"root{i}": 1 for i in range(keys)}
    return {"flowId": FLOW, "inputData": inputs, **roots}


def test_huge_payloads_are_diagnosed_in_bounded_work() -> None:
    huge, tenth = _huge_payload(200_000), _huge_payload(20_000)
    hints = diagnose_payload(huge, input_schema=SCHEMA)
    # Twenty of each, then one line saying how many more: the same for any size past the cap.
    assert [h.code for h in hints] == ["unknown-root-key"] * 21 + ["input-key-prefix"] * 21
    assert hints[20].message == (
        "more unknown root keys follow: the launch body takes only flowId, flowVersion, "
        "inputData and name"
    )
    assert hints[-1].message == (
        "and 9980 more input key(s) without the 'Flow.' prefix (only the first keys were checked)"
    )
    assert [h.message for h in diagnose_payload(tenth, input_schema=SCHEMA)] == [
        h.message for h in hints
    ]
    # Work past the cap does not grow with the input (timings: `make bench`).
    assert_cost_grows_at_most(
        lambda: diagnose_payload(tenth, input_schema=SCHEMA),
        lambda: diagnose_payload(huge, input_schema=SCHEMA),
        growth=1,
    )


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=256),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["flowId", "inputData", "Flow.count", "Flow.x", "data", "k"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=15,
        ).map(lambda doc: json.dumps(doc).encode()),
    )
)
def test_diagnosis_never_raises_and_uses_only_stable_codes(body: bytes) -> None:
    hints = diagnose_launch(body, content_type="application/json", input_schema=SCHEMA)
    assert {h.code for h in hints} <= set(HINT_CODES)


def test_arch_type_named_only_in_the_description_is_enforced() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "Flow.orderNumber": {
                "type": ["null", "integer", "string"],
                "description": "archInteger: order number",
            }
        },
    }
    bad = diagnose_payload(
        {"flowId": FLOW, "inputData": {"Flow.orderNumber": "twelve"}}, input_schema=schema
    )
    assert [h.code for h in bad] == ["input-type"]
    good = diagnose_payload(
        {"flowId": FLOW, "inputData": {"Flow.orderNumber": "157"}}, input_schema=schema
    )
    assert good == []


# -- field mistakes (issue 17) -------------------------------------------------------------------


def test_inputs_nested_under_flow_get_one_hint_with_the_flattened_names() -> None:
    hints = _launch({"flowId": FLOW, "inputData": {"Flow": {"customerId": "1", "isVip": True}}})
    assert _codes(hints) == ["input-nested"]
    assert "'Flow.customerId', 'Flow.isVip'" in hints[0].message
    assert "Flow.Flow" not in hints[0].message
    assert hints[0].field == "inputData.Flow"


def test_an_object_under_a_prefixed_key_is_a_json_value_not_nested_inputs() -> None:
    assert _launch({"flowId": FLOW, "inputData": {"Flow.context": {"customerId": "1"}}}) == []


def test_a_declared_json_input_holding_input_like_keys_is_not_nested() -> None:
    payload = {"flowId": FLOW, "inputData": {"Flow.context": {"Flow.customerId": "1"}}}
    assert diagnose_payload(payload, input_schema=SCHEMA) == []


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("Flow .customerId", "Flow.customerId"),
        ("Flow_customerId", "Flow.customerId"),
        ("Flow:customerId", "Flow.customerId"),
        ("Flow-customerId", "Flow.customerId"),
        ("FlowcustomerId", "Flow.customerId"),
        ("flow.customerId", "Flow.customerId"),
        ("FLOW.customerId", "Flow.customerId"),
        ("Flow.Flow.customerId", "Flow.customerId"),
        ("flow_flow.customerId", "Flow.customerId"),
        ("customerId", "Flow.customerId"),
        ("flowType", "Flow.flowType"),
    ],
)
def test_every_near_miss_of_the_prefix_gets_the_right_name(key: str, meant: str) -> None:
    hint = _only(_launch({"flowId": FLOW, "inputData": {key: "1"}}), "input-key-prefix")
    assert f"did you mean '{meant}'?" in hint.message


def test_prefix_alone_is_not_doubled() -> None:
    hint = _only(_launch({"flowId": FLOW, "inputData": {"Flow": "1"}}), "input-key-prefix")
    assert "only the prefix" in hint.message
    assert "Flow.Flow" not in hint.message


def test_near_miss_takes_the_declared_name_whatever_its_case() -> None:
    payload = {"flowId": FLOW, "inputData": {"FlowCustomerId": "1"}}
    hint = _only(diagnose_payload(payload, input_schema=SCHEMA), "input-key-prefix")
    assert "did you mean 'Flow.customerId'?" in hint.message
    assert "the flow declares it" in hint.message


@pytest.mark.parametrize(
    ("flow_id", "expected"),
    [
        ("Order Status Lookup", "GET /api/v2/flows?name=Order%20Status%20Lookup"),
        ("3.0", "looks like a flow version"),
        (f"https://apps.mypurecloud.ie/architect/#/workflow/flows/{FLOW}/latest", f"'{FLOW}'"),
        (f"/api/v2/flows/{FLOW}/versions/3.0", "flow version URI"),
        ("${input.flowId}", "placeholder"),
        ("undefined", "placeholder"),
        (FLOW.replace("-", ""), f"send it as '{FLOW}'"),
        (f" {FLOW} ", f"send exactly '{FLOW}'"),
    ],
)
def test_flow_id_that_is_not_a_uuid_says_where_the_id_is(flow_id: str, expected: str) -> None:
    hints = _launch({"flowId": flow_id})
    assert _codes(hints) == ["flow-id-not-uuid"]
    assert expected in hints[0].message


@pytest.mark.parametrize("flow_id", [FLOW, FLOW.upper(), "00000000-0000-4000-8000-000000000000"])
def test_uuid_flow_ids_are_left_alone(flow_id: str) -> None:
    assert _launch({"flowId": flow_id}) == []


def test_flow_id_near_miss_gives_one_hint_not_two() -> None:
    assert _codes(_launch({"flow_id": FLOW})) == ["missing-flow-id"]
    assert _codes(_launch({"flowName": "Order Status Lookup"})) == ["missing-flow-id"]
    # With a flowId present, a second spelling is just an unknown key.
    assert _codes(_launch({"flowId": FLOW, "flow_id": FLOW})) == ["unknown-root-key"]


def test_flow_object_at_the_root_is_inputs_not_a_flow_id_stand_in() -> None:
    hints = _launch({"Flow": {"customerId": "1"}})
    assert _codes(hints) == ["unknown-root-key", "missing-flow-id"]
    assert "'Flow.customerId'" in hints[0].message
    assert "'Flow' is not a launch field" in hints[0].message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b", 'send a JSON list such as ["first", "second"]'),
        ("a", "even for one value: [value]"),
        ('["a", "b"]', "send the list itself"),
        (7, "even for one value"),
    ],
)
def test_collection_given_something_else_names_the_fix(value: object, expected: str) -> None:
    payload = {"flowId": FLOW, "inputData": {"Flow.tags": value}}
    hint = _only(diagnose_payload(payload, input_schema=SCHEMA), "input-type")
    assert expected in hint.message


def test_json_input_given_as_json_text_says_to_send_the_object() -> None:
    payload = {"flowId": FLOW, "inputData": {"Flow.context": '{"a": 1}'}}
    hint = _only(diagnose_payload(payload, input_schema=SCHEMA), "input-type")
    assert "send the object itself, not a string holding it as JSON" in hint.message


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        (
            {"flowId": FLOW, "inputData": {"customerId": "1"}},
            "inputData.customerId",
            "input-key-prefix",
        ),
        # nearly: the platform names the input with its prefix, the payload has it without
        ({"flowId": FLOW, "inputData": {"customerId": "1"}}, "Flow.customerId", "input-key-prefix"),
        (
            {"flowId": FLOW, "inputData": {"Flow_customerId": "1"}},
            "inputData.Flow.customerId",
            "input-key-prefix",
        ),
        ({"flow_id": FLOW}, "flow_id", "missing-flow-id"),
        ({"flowId": "Order Status Lookup"}, "flowId", "flow-id-not-uuid"),
        ({"flowId": FLOW, "data": {}}, "data", "unknown-root-key"),
        ({"flowId": FLOW, "inputData": {"Flow": {"a": 1}}}, "inputData.Flow", "input-nested"),
    ],
)
def test_hint_for_a_key_the_platform_named_says_the_platform_rejected_it(
    payload: dict[str, Any], field: str, code: str
) -> None:
    plain = _only(_launch(payload), code)
    hints = _launch(payload, rejected_fields=[field])
    assert _codes(hints) == [code]
    assert (
        hints[0].message
        == f"the platform rejected '{field}' (the error's fieldName); {plain.message}"
    )


def test_a_field_the_payload_does_not_have_leaves_the_hints_as_they_were() -> None:
    payload = {"flowId": FLOW, "inputData": {"customerId": "1"}}
    assert _launch(payload, rejected_fields=["inputData.orderNumber", "flowId", ""]) == _launch(
        payload
    )


def test_many_nested_objects_give_capped_hints_naming_a_few_flat_names() -> None:
    inner = {f"Flow.k{i}": 1 for i in range(300)}
    inputs = {f"o{i}": inner for i in range(300)}
    schema = {"additionalProperties": False, "properties": {f"Flow.p{i}": {} for i in range(3000)}}
    hints = diagnose_payload({"flowId": FLOW, "inputData": inputs}, input_schema=schema)
    assert _codes(hints) == ["input-nested"] * 21
    assert hints[0].message.count("'Flow.k") == 8
    assert hints[-1].message == "and 280 more input key(s) nested in an object"
