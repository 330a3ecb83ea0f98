"""The live protocol: cursors, scope names, client frames decoded totally, bounded sync frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.entities import Document
from domain.feed import DocumentsScope, WorkspaceDocumentsScope, WorkspacesScope
from domain.result import Err, Ok
from entrypoints.server.protocol import (
    MAX_SCOPES,
    Answer,
    Cursor,
    Resync,
    ScopeName,
    Subscribe,
    Unknown,
    answer_frames,
    decode_client_frame,
    parse_cursor,
    parse_scope,
)
from entrypoints.server.representation import document_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.text(max_size=300))
def test_any_text_decodes_to_a_frame_or_a_reason(text: str) -> None:
    decoded = decode_client_frame(text)
    if isinstance(decoded, Err):
        assert isinstance(decoded.error, str)
        assert decoded.error
    else:
        assert isinstance(decoded.value, Subscribe | Resync | Unknown)


@given(json_values)
def test_any_json_decodes_to_a_frame_or_a_reason(value: object) -> None:
    decoded = decode_client_frame(json.dumps(value))
    assert isinstance(decoded, Ok | Err)
    if isinstance(decoded, Ok):
        assert isinstance(value, dict)
        assert isinstance(value.get("type"), str)
        if not isinstance(decoded.value, Unknown):
            assert value["type"] in ("subscribe", "resync")


@given(
    st.dictionaries(
        st.sampled_from(["type", "scopes", "cursor", "extra"]),
        json_values | st.sampled_from(["subscribe", "workspaces", "workspace:3"]),
    )
)
def test_near_miss_subscribe_frames_are_refused_or_well_formed(frame: dict[str, object]) -> None:
    decoded = decode_client_frame(json.dumps(frame))
    if isinstance(decoded, Ok):
        assert isinstance(frame["type"], str)
        if isinstance(decoded.value, Subscribe):
            assert set(frame) <= {"type", "scopes", "cursor"}
            assert 1 <= len(decoded.value.scopes) <= MAX_SCOPES


def test_a_subscribe_frame_is_decoded() -> None:
    frame = json.dumps(
        {
            "type": "subscribe",
            "scopes": ["workspaces", "workspace:7", "workspaces"],
            "cursor": "e:9",
        }
    )
    assert decode_client_frame(frame) == Ok(
        Subscribe((ScopeName("workspaces"), ScopeName("workspace", (7,))), "e:9")
    )
    assert decode_client_frame('{"type":"resync"}') == Ok(Resync())
    assert decode_client_frame('{"type":"hello","from":"a newer client"}') == Ok(Unknown("hello"))


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ("[]", "JSON object"),
        ('{"kind":"subscribe"}', "string 'type'"),
        ('{"type":"subscribe","scopes":"workspaces"}', "list of scope names"),
        ('{"type":"subscribe","scopes":[]}', "at least one scope"),
        ('{"type":"subscribe","scopes":["workspace:0"]}', "unknown scope"),
        ('{"type":"subscribe","scopes":["workspaces"],"cursor":5}', "'cursor'"),
        ('{"type":"subscribe","scopes":["workspaces"],"since":1}', "unknown field"),
        ('{"type":"resync","x":1}', "no fields"),
        ("[" * 100_000, "JSON"),
    ],
)
def test_malformed_frames_say_what_is_wrong(frame: str, problem: str) -> None:
    decoded = decode_client_frame(frame)
    assert isinstance(decoded, Err)
    assert problem in decoded.error


@given(st.text(alphabet="abcXYZ019_-", min_size=1, max_size=64), st.integers(0, 2**63 - 1))
def test_a_cursor_survives_its_encoding(epoch: str, position: int) -> None:
    assert parse_cursor(Cursor(epoch, position).encode()) == Cursor(epoch, position)


@pytest.mark.parametrize(
    "text", ["", "12", ":12", "e:", "e:-1", "e:1.5", "e:" + "9" * 20, "é:1", "a b:1", "e:0x10"]
)
def test_malformed_cursors_are_recognised(text: str) -> None:
    assert parse_cursor(text) is None


def test_scope_names_bind_to_their_user() -> None:
    def bound(text: str) -> object:
        parsed = parse_scope(text)
        assert isinstance(parsed, Ok)
        assert str(parsed.value) == text
        return parsed.value.bind(4)

    assert bound("workspaces") == WorkspacesScope(4)
    assert bound("workspace:12") == WorkspaceDocumentsScope(4, 12)
    assert bound("documents:3,5") == DocumentsScope(4, frozenset({3, 5}))
    for bad in [
        "workspace",
        "workspace:x",
        "documents:",
        "documents:1,,2",
        "files:1",
        "Workspaces",
    ]:
        assert isinstance(parse_scope(bad), Err)
    assert isinstance(parse_scope("documents:" + ",".join(str(i) for i in range(1, 102))), Err)


def _document(document_id: int, filler: str) -> Document:
    now = datetime.now(UTC)
    return Document(
        id=document_id,
        user_id=1,
        workspace_id=1,
        filename=filler,
        storage_key="k",
        created_at=now,
        updated_at=now,
    )


@given(st.integers(0, 60), st.integers(0, 300), st.integers(1024, 8192))
def test_an_answer_is_paged_into_frames_within_the_bound(count: int, size: int, bound: int) -> None:
    documents = [_document(i + 1, "x" * size) for i in range(count)]
    answer = Answer(
        scope=ScopeName("workspace", (1,)),
        mode="snapshot",
        reason=None,
        entities=list(documents),
        entity_json=[document_json(d) for d in documents],
        cursor="e:5",
        more=None,
    )
    frames = list(answer_frames(answer, bound))
    decoded = [json.loads(frame) for frame in frames]
    assert all(len(frame.encode()) <= bound for frame in frames)
    assert [f["part"] for f in decoded] == list(range(len(frames)))
    assert [f["last"] for f in decoded] == [False] * (len(frames) - 1) + [True]
    assert [e["id"] for f in decoded for e in f["entities"]] == [d.id for d in documents]
    assert all(f["cursor"] == "e:5" and f["scope"] == "workspace:1" for f in decoded)
