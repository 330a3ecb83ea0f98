"""Every decoder of outside bytes is total: a value, or its one documented refusal, never a crash.

Broker bodies decode to an event or ``MalformedMessage`` (with a reason); request values parse
to a value or an ``ApiError`` with a 4xx status. The examples are the inputs that once escaped
as another exception (``RecursionError``, an int too long to convert, a lone surrogate).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import MalformedMessage
from domain.events import (
    DocumentStatusUpdated,
    DocumentUploaded,
    Event,
    WorkspaceCreated,
    decode,
    encode,
)
from domain.progress import Progress
from domain.status import DocumentProcessingStatus
from entrypoints.server.errors import ApiError
from entrypoints.server.params import bearer_token, parse_id, parse_json_object, text_field


def envelope(routing_key: str = "document.uploaded", **message: Any) -> dict[str, Any]:
    fields = {"document_id": 7, "user_id": 42, "workspace_id": 3, "file_path": "f", "version": 1}
    return {
        "schema": 1,
        "routing_key": routing_key,
        "event_id": "e1",
        "occurred_at": "2026-01-02T03:04:05+00:00",
        "message": {**fields, **message},
    }


def outcome(call: Any, *args: Any) -> Any:
    """What ``call`` returns, or the exception it raises: a total function has only these."""
    try:
        return call(*args)
    except (MalformedMessage, ApiError) as exc:
        return exc


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def refusal(raw: bytes | str) -> str:
    with pytest.raises(MalformedMessage) as refused:
        decode(raw)
    return str(refused.value)


# -- broker bodies ---------------------------------------------------------------------------


def test_a_deeply_nested_body_is_malformed_not_a_recursion_error() -> None:
    assert "nests" in refusal(b"[" * 100_000)
    assert "nests" in refusal(b'{"a":' * 50_000)


def test_deep_nesting_inside_a_valid_envelope_is_malformed() -> None:
    nested: Any = "leaf"
    for _ in range(200):
        nested = [nested]
    raw = body(envelope("document.status.updated", metadata={"deep": nested}))
    assert "nests" in refusal(raw)


@pytest.mark.parametrize("version", [10**18, 2**63, -1])
def test_an_implausible_version_is_malformed(version: int) -> None:
    assert "version" in refusal(body(envelope(version=version)))


@pytest.mark.parametrize("document_id", [2**63, -5])
def test_an_id_outside_storage_range_is_malformed(document_id: int) -> None:
    assert "document_id" in refusal(body(envelope(document_id=document_id)))


def test_a_five_thousand_digit_integer_is_malformed() -> None:
    raw = body(envelope()).replace(b'"version": 1', b'"version": ' + b"9" * 5000)
    assert "digits" in refusal(raw)
    # Also where no field is checked: the parser itself refuses to build it.
    assert "digits" in refusal(b'{"schema": 1, "pad": ' + b"1" * 4000 + b"}")


def test_a_lone_surrogate_is_malformed() -> None:
    raw = body(envelope()).replace(b'"file_path": "f"', b'"file_path": "\\ud800"')
    assert "surrogate" in refusal(raw)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_numbers_are_malformed(constant: bytes) -> None:
    raw = body(envelope("document.status.updated")).replace(b"}}", b', "x": ' + constant + b"}}")
    assert "not" in refusal(raw)


def test_a_malformed_progress_step_is_malformed() -> None:
    raw = body(envelope("document.status.updated", progress=[{"label": "x", "state": [1]}]))
    assert refusal(raw)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
FIELD_NAMES = st.sampled_from(
    [
        "document_id",
        "user_id",
        "workspace_id",
        "file_path",
        "version",
        "filename",
        "status",
        "error",
        "chunk_count",
        "metadata",
        "progress",
        "name",
        "message",
    ]
)


def _decodes_or_refuses(raw: bytes | str) -> None:
    event = outcome(decode, raw)
    if isinstance(event, MalformedMessage):
        assert str(event), "a refusal says why"
    else:
        assert isinstance(event, Event)
        assert decode(encode(event)) == event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_any_bytes_decode_to_an_event_or_malformed(raw: bytes) -> None:
    _decodes_or_refuses(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        [
            "document.uploaded",
            "document.status.updated",
            "workspace.status.updated",
            "workspace.created",
            "document.chunked",
        ]
    ),
    st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=8),
)
def test_any_message_decodes_to_an_event_or_malformed(
    routing_key: str, message: dict[str, Any]
) -> None:
    _decodes_or_refuses(body(envelope(routing_key, **message)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.builds(
        DocumentStatusUpdated,
        document_id=st.integers(0, 2**63 - 1),
        user_id=st.integers(0, 2**63 - 1),
        workspace_id=st.integers(0, 2**63 - 1),
        filename=st.text(st.characters(exclude_categories=["Cs"])),
        status=st.sampled_from(DocumentProcessingStatus),
        error=st.none() | st.text(st.characters(exclude_categories=["Cs"])),
        chunk_count=st.integers(0, 2**31 - 1),
        metadata=st.dictionaries(
            st.text(st.characters(exclude_categories=["Cs"])), st.integers(-(2**63), 2**63 - 1)
        ),
        progress=st.just(Progress.plan(["Parsing", "Chunking"])),
        version=st.integers(0, 2**31 - 1),
    )
    | st.builds(
        WorkspaceCreated,
        workspace_id=st.integers(0, 2**63 - 1),
        user_id=st.integers(0, 2**63 - 1),
        name=st.text(st.characters(exclude_categories=["Cs"])),
        version=st.integers(0, 2**31 - 1),
    )
    | st.builds(
        DocumentUploaded,
        document_id=st.integers(0, 2**63 - 1),
        user_id=st.integers(0, 2**63 - 1),
        workspace_id=st.integers(0, 2**63 - 1),
        file_path=st.text(st.characters(exclude_categories=["Cs"])),
        version=st.integers(0, 2**31 - 1),
    )
)
def test_every_plausible_event_survives_the_round_trip(event: Event) -> None:
    assert decode(encode(event)) == event


# -- request values --------------------------------------------------------------------------


def client_error(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as refused:
        call(*args)
    assert 400 <= refused.value.status < 500
    return refused.value


def test_a_five_thousand_digit_id_is_not_found() -> None:
    refused = client_error(parse_id, "9" * 5000, "document_id")
    assert refused.status == 404
    assert refused.field == "document_id"
    assert len(refused.message) < 100


@pytest.mark.parametrize("raw", ["", "-1", "1e3", "٣", "9223372036854775808", " 1"])
def test_ids_that_name_no_row_are_not_found(raw: str) -> None:
    assert client_error(parse_id, raw, "workspace_id").status == 404


def test_the_largest_stored_id_is_accepted() -> None:
    assert parse_id("9223372036854775807", "workspace_id") == 2**63 - 1
    assert parse_id("007", "workspace_id") == 7


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_any_path_value_is_an_id_or_not_found(raw: str) -> None:
    value = outcome(parse_id, raw, "document_id")
    if isinstance(value, ApiError):
        assert value.status == 404
    else:
        assert 0 <= value < 2**63
        assert str(value) == raw.lstrip("0") or value == 0


@pytest.mark.parametrize("header", ["Bearer é", "Bearer v1.abc\u2028.x", "Bearer tok\x00en"])
def test_a_token_that_is_not_ascii_text_is_malformed(header: str) -> None:
    refused = client_error(bearer_token, header)
    assert refused.status == 401
    assert refused.message == "malformed token"


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer   ", "Basic abc"])
def test_no_bearer_token_is_missing(header: str) -> None:
    assert client_error(bearer_token, header).message == "missing bearer token"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_any_authorization_header_is_a_token_or_401(header: str) -> None:
    token = outcome(bearer_token, header)
    if isinstance(token, ApiError):
        assert token.status == 401
        assert token.headers == {"WWW-Authenticate": "Bearer"}
    else:
        assert token.isascii()
        assert token == token.strip()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"[" * 50_000, 400),
        (b'{"a": ' + b"9" * 5000 + b"}", 400),
        (b'{"a": NaN}', 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 422),
        (b"x" * (65 * 1024), 413),
    ],
)
def test_hostile_json_bodies_are_client_errors(raw: bytes, status: int) -> None:
    assert client_error(parse_json_object, raw).status == status


@pytest.mark.parametrize("name", ["\ud800", "a\udfffb", "nul\x00"])
def test_a_name_that_is_not_text_is_refused_naming_the_field(name: str) -> None:
    parsed = parse_json_object(json.dumps({"name": name}).encode())
    refused = client_error(text_field, parsed, "name")
    assert refused.status == 422
    assert refused.field == "name"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256) | JSON_VALUES.map(lambda value: json.dumps(value).encode()))
def test_any_body_is_an_object_or_a_client_error(raw: bytes) -> None:
    parsed = outcome(parse_json_object, raw)
    name = parsed if isinstance(parsed, ApiError) else outcome(text_field, parsed, "name")
    if isinstance(name, ApiError):
        assert 400 <= name.status < 500
    else:
        name.encode()
