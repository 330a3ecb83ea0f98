"""Signed event bodies: signing, verifying, key rotation, and refusing implausible versions."""

from __future__ import annotations

import json
import secrets

import pytest
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from adapters.memory.broker import InMemoryBroker
from adapters.messaging import EventCodec, deliver_status
from adapters.settings import ConfigError, Settings
from domain.errors import MalformedMessage
from domain.events import (
    DocumentUploaded,
    StatusEvent,
    WorkspaceStatusUpdated,
    decode,
    encode,
)
from domain.signing import (
    BAD_SIGNATURE,
    IMPLAUSIBLE_VERSION,
    UNSIGNED,
    EventSigner,
    UntrustedMessage,
    VersionGuard,
)
from domain.status import WorkspaceStatus
from entrypoints.asyncapi import envelope_schema

KEY = secrets.token_urlsafe(32)
OLD_KEY = secrets.token_urlsafe(32)


def _status(version: int = 1, workspace_id: int = 7) -> WorkspaceStatusUpdated:
    return WorkspaceStatusUpdated(
        workspace_id=workspace_id,
        user_id=1,
        name="w",
        status=WorkspaceStatus.READY,
        message=None,
        version=version,
    )


def test_a_signed_body_is_the_plain_body_plus_a_last_signature_field() -> None:
    plain = encode(_status())
    signed = EventSigner(KEY).sign(plain)
    envelope = json.loads(signed)
    assert len(envelope.pop("signature")) == 64
    assert envelope == json.loads(plain)
    assert EventSigner(KEY).verify(signed) == plain
    assert decode(signed) == decode(plain)


def test_a_body_signed_with_the_previous_key_verifies_during_a_change_over() -> None:
    plain = encode(_status())
    old_body = EventSigner(OLD_KEY).sign(plain)
    assert EventSigner(KEY, previous=OLD_KEY).verify(old_body) == plain
    with pytest.raises(UntrustedMessage) as refused:
        EventSigner(KEY).verify(old_body)
    assert refused.value.reason == BAD_SIGNATURE


def test_new_bodies_are_signed_with_the_current_key_only() -> None:
    signed = EventSigner(KEY, previous=OLD_KEY).sign(encode(_status()))
    EventSigner(KEY).verify(signed)
    with pytest.raises(UntrustedMessage):
        EventSigner(OLD_KEY).verify(signed)


def test_a_tampered_body_fails_verification() -> None:
    signed = EventSigner(KEY).sign(encode(_status()))
    tampered = signed.replace(b'"name":"w"', b'"name":"x"')
    assert tampered != signed
    with pytest.raises(UntrustedMessage) as refused:
        EventSigner(KEY).verify(tampered)
    assert refused.value.reason == BAD_SIGNATURE


@pytest.mark.parametrize(
    "body",
    [
        encode(_status()),
        encode(_status())[:-1] + b',"signature":"not hex"}',
        b"",
        b"not json at all",
    ],
)
def test_an_unsigned_body_is_refused(body: bytes) -> None:
    with pytest.raises(UntrustedMessage) as refused:
        EventSigner(KEY).verify(body)
    assert refused.value.reason == UNSIGNED
    assert isinstance(refused.value, MalformedMessage)  # work queues dead-letter it


def test_the_version_guard_refuses_absurd_versions_and_leaps() -> None:
    guard = VersionGuard(max_version=1000, max_jump=10)
    with pytest.raises(UntrustedMessage) as refused:
        guard.check(("workspace", 1), 10**18)
    assert refused.value.reason == IMPLAUSIBLE_VERSION
    guard.check(("workspace", 1), 5)
    guard.check(("workspace", 1), 15)  # a leap of exactly the bound
    with pytest.raises(UntrustedMessage, match="leaps"):
        guard.check(("workspace", 1), 26)
    guard.check(("workspace", 1), 3)  # an old version is the hub's to ignore, not forged
    guard.check(("workspace", 2), 900)  # another entity, never seen: the absolute bound only


def test_the_version_guard_forgets_the_least_recently_seen_entities() -> None:
    guard = VersionGuard(max_version=1000, max_jump=10, remembered=2)
    guard.check(("workspace", 1), 1)
    guard.check(("workspace", 2), 1)
    guard.check(("workspace", 3), 1)
    guard.check(("workspace", 1), 500)  # forgotten, so only the absolute bound holds
    with pytest.raises(UntrustedMessage):
        guard.check(("workspace", 3), 500)


def test_the_codec_signs_and_verifies_and_counts_what_it_refuses() -> None:
    refused: list[tuple[str, str]] = []
    codec = EventCodec(
        EventSigner(KEY),
        VersionGuard(max_version=100, max_jump=10),
        on_rejected=lambda kind, reason: refused.append((kind, reason)),
    )
    work = DocumentUploaded(document_id=1, user_id=1, workspace_id=1, file_path="f", version=1)
    assert codec.decode(codec.encode(work)) == work
    with pytest.raises(UntrustedMessage):
        codec.decode(encode(work))
    with pytest.raises(UntrustedMessage):
        codec.decode_status(EventSigner(OLD_KEY).sign(encode(_status())))
    with pytest.raises(UntrustedMessage):
        codec.decode_status(codec.encode(_status(version=101)))
    assert refused == [
        ("work", UNSIGNED),
        ("status", BAD_SIGNATURE),
        ("status", IMPLAUSIBLE_VERSION),
    ]


def test_without_a_key_bodies_are_exactly_the_plain_encoding() -> None:
    event = _status()
    assert EventCodec().encode(event) == encode(event)


def test_deliver_status_drops_forged_events_and_hands_over_signed_ones() -> None:
    codec = EventCodec(EventSigner(KEY), VersionGuard(max_version=100, max_jump=10))
    heard: list[StatusEvent] = []
    deliver_status(encode(_status(1)), heard.append, codec)
    deliver_status(EventSigner(OLD_KEY).sign(encode(_status(2))), heard.append, codec)
    deliver_status(codec.encode(_status(10**18)), heard.append, codec)
    deliver_status(codec.encode(_status(3)), heard.append, codec)
    assert [event.version for event in heard] == [3]


def test_a_forged_work_request_is_dead_lettered_with_its_reason() -> None:
    codec = EventCodec(EventSigner(KEY))
    broker = InMemoryBroker(codec=codec)
    queue = broker.work_queue("ingestion", ["document.uploaded"])
    work = DocumentUploaded(document_id=1, user_id=1, workspace_id=1, file_path="f", version=1)
    broker.connection.route(work.routing_key, encode(work))
    broker.publisher().publish(work)
    delivery = queue.receive(timeout=1)
    assert delivery is not None
    assert delivery.event == work
    delivery.ack()
    (letter,) = broker.dead_letters().of("ingestion")
    assert letter.reason.startswith(UNSIGNED)
    broker.close()


def test_settings_read_signing_keys_and_refuse_a_previous_key_alone() -> None:
    settings = Settings.from_environ(
        {"EVENT_SIGNING_KEY": KEY, "EVENT_SIGNING_KEY_PREVIOUS": OLD_KEY}
    )
    assert (settings.event_signing_key, settings.event_signing_key_previous) == (KEY, OLD_KEY)
    assert KEY not in repr(settings)
    with pytest.raises(ConfigError, match="EVENT_SIGNING_KEY_PREVIOUS"):
        Settings.from_environ({"EVENT_SIGNING_KEY_PREVIOUS": OLD_KEY})
    with pytest.raises(ConfigError, match="EVENT_SIGNING_KEY"):
        Settings.from_environ({"EVENT_SIGNING_KEY": "short"})


def test_a_signed_body_matches_the_published_envelope_schema() -> None:
    event = _status()
    signed = json.loads(EventSigner(KEY).sign(encode(event)))
    validator = Draft7Validator(envelope_schema(type(event)))
    validator.validate(signed)
    with pytest.raises(ValidationError):
        validator.validate({**signed, "signature": "not hex"})
