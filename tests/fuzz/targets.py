"""Coverage-guided fuzz targets, one per decoder of outside bytes.

``python -m tests.fuzz.targets NAME [libFuzzer options] [CORPUS_DIR]`` fuzzes one target; a
target fails (and the run exits non-zero) only when the decoder raises something other than
its one documented refusal, or returns something it must not.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

# Only the code under test is instrumented: instrumenting its libraries too costs minutes.
with atheris.instrument_imports(include=["domain", "application", "entrypoints", "json"]):
    from application.graph import entities_in
    from application.pipeline import split_text
    from domain.errors import MalformedMessage
    from domain.events import Event, decode
    from entrypoints.server.errors import ApiError
    from entrypoints.server.params import bearer_token, parse_id, parse_json_object, text_field


def _refused_as_client_error(exc: ApiError) -> None:
    if not 400 <= exc.status < 500:
        raise AssertionError(f"a client's input answered {exc.status}: {exc.message}")


def event_body(data: bytes) -> None:
    try:
        event = decode(data)
    except MalformedMessage as exc:
        if not str(exc):
            raise AssertionError("a refusal must say why") from exc
        return
    assert isinstance(event, Event)


def json_body(data: bytes) -> None:
    try:
        body = parse_json_object(data)
        text_field(body, "name")
    except ApiError as exc:
        _refused_as_client_error(exc)


def path_id(data: bytes) -> None:
    raw = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(64)
    try:
        value = parse_id(raw, "document_id")
    except ApiError as exc:
        _refused_as_client_error(exc)
        return
    assert 0 <= value < 2**63


def bearer(data: bytes) -> None:
    header = atheris.FuzzedDataProvider(data).ConsumeUnicode(600)
    try:
        token = bearer_token(header)
    except ApiError as exc:
        _refused_as_client_error(exc)
        return
    assert token.isascii()


def graph_text(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(4096)
    for entity in entities_in(text):
        assert entity
        assert entity == entity.strip()


def chunk_text(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    size = provider.ConsumeIntInRange(1, 64)
    overlap = provider.ConsumeIntInRange(0, size - 1)
    text = provider.ConsumeUnicodeNoSurrogates(4096)
    chunks = split_text(text, size=size, overlap=overlap)
    for chunk in chunks:
        assert 0 < len(chunk) <= size


TARGETS: dict[str, Callable[[bytes], None]] = {
    "event_body": event_body,
    "json_body": json_body,
    "path_id": path_id,
    "bearer": bearer,
    "graph_text": graph_text,
    "chunk_text": chunk_text,
}


def main(argv: list[str]) -> None:
    name, *options = argv[1:]
    atheris.Setup([argv[0], *options], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
