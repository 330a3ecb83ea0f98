"""The fault scenarios: each runs a real deployment through one fault and returns its figures.

Every scenario uses ``DELIVERY=outbox``: status changes are committed with their event, and
``insighthub relay`` publishes them. The work itself (document uploads, pipeline stages,
provisioning) flows as in production, from the HTTP API through the broker to the workers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx

from bench.bulk import insert_documents
from domain.events import (
    MAX_BODY_BYTES,
    MAX_COUNT,
    WORK_QUEUES,
    DocumentStatusUpdated,
    DocumentUploaded,
    Event,
    StatusEvent,
    encode,
    entity_key,
)
from domain.result import Err
from domain.signing import EventSigner
from domain.status import DocumentProcessingStatus
from tests.faults.harness import TRANSPORTS, Deployment, Figures
from tests.support.processes import free_port
from tests.support.raw_messages import publish_raw
from tests.support.ws_client import StatusClient

Scenario = Callable[[str], Figures]


def _setup(
    d: Deployment,
    *,
    users: int = 2,
    relay: bool = True,
    workers: int = 1,
    worker_metrics: bool = False,
) -> tuple[Any, list[tuple[int, int]]]:
    # Workers and the relay first: their interpreters start while the server's does.
    for _ in range(workers):
        d.worker(metrics_port=free_port() if worker_metrics else None)
    if relay:
        d.relay()
    server = d.server()
    people = [d.new_user() for _ in range(users)]
    targets = [(user, d.ready_workspace(server, user)) for user in people]
    for user in people:
        d.client(user, server)
    return server, targets


def worker_killed_after_commit(transport: str) -> Figures:
    """1. A worker is SIGKILLed after committing status changes, before any is published."""
    with Deployment(transport) as d:
        started = time.monotonic()
        # No relay yet: whatever the worker commits stays unpublished when it dies.
        server, targets = _setup(d, relay=False)
        d.stream(server, targets, 12, 0.05)
        d.wait_for(lambda: d.unsent() >= 30, 60, "committed, unpublished status changes")
        worker = d.processes[0]
        worker.kill()
        d.notes.append(f"worker SIGKILLed with {d.unsent()} committed events unpublished")
        d.relay()
        d.worker()
        return d.figures(
            "1. worker SIGKILLed after commit, before publish", started, d.wait_converged()
        )


def worker_killed_before_commit(transport: str) -> Figures:
    """2. Workers are SIGKILLed mid-job, repeatedly, during a stream of uploads."""
    with Deployment(transport) as d:
        started = time.monotonic()
        server, targets = _setup(d)
        current = [d.processes[0]]

        def kill_sometimes(n: int) -> None:
            if n in (4, 9, 14):
                current[0].kill()
                d.notes.append("worker SIGKILLed mid-stream")
                current[0] = d.worker()

        # Three kills, each with documents of both users in flight around it.
        d.stream(server, targets, 18, 0.12, during=kill_sometimes)
        return d.figures("2. worker SIGKILLed before commit", started, d.wait_converged())


def relay_killed_between_publish_and_mark(transport: str) -> Figures:
    """3. The relay is SIGKILLed after publishing a batch, before marking it sent.

    Publish and mark are milliseconds apart, too close to aim a kill between them: a lock
    on the outbox holds the mark back while the relay publishes, and the relay is killed
    once the batch's events are seen.
    """
    with Deployment(transport) as d:
        started = time.monotonic()
        server, targets = _setup(d, relay=False)
        d.stream(server, targets, 20, 0.02)
        d.wait_for(lambda: d.unsettled() == 0, 90, "every document processed")
        backlog = d.unsent()
        before = len(d.observer.events())
        with d.outbox_marks_held() as end_waiting_marks:
            relay = d.relay()
            d.wait_for(
                lambda: len(d.observer.events()) - before >= backlog, 60, "the batch published"
            )
            relay.kill()
            ended = end_waiting_marks()
        published = len(d.observer.events()) - before
        unmarked = d.unsent()
        d.notes.append(
            f"relay SIGKILLed after publishing {published} of a {backlog}-event backlog, "
            f"its mark-sent waiting ({ended} session ended); {unmarked} still unmarked"
        )
        d.relay()
        figures = d.figures(
            "3. relay SIGKILLed between publish and mark-sent", started, d.wait_converged()
        )
        figures.exercised = published >= backlog > 0 and unmarked == backlog
        return figures


def broker_cut(transport: str, seconds: float = 12.0) -> Figures:
    """4. Every process's broker link is cut for 12 s during a stream of updates.

    Twelve seconds outlast every timeout the cut exercises: the reconnection backoff's 5 s
    ceiling, Redis's 10 s socket timeout, the 3 s redelivery and 4 s lease of the deployment.
    """
    with Deployment(transport, broker_proxy=True) as d:
        started = time.monotonic()
        server, targets = _setup(d)
        proxy = d.broker_proxy
        assert proxy is not None
        cut = threading.Timer(3.0, proxy.cut)
        restore = threading.Timer(3.0 + seconds, proxy.restore)
        cut.start()
        restore.start()
        d.stream(server, targets, int((seconds + 8) / 0.8), 0.8)
        restore.join()
        d.notes.append(f"broker unreachable for {seconds:.0f} s")
        return d.figures(
            f"4. broker connection cut for {seconds:.0f} s", started, d.wait_converged()
        )


def server_killed(transport: str) -> Figures:
    """5. One of two server instances is SIGKILLed with sockets connected."""
    with Deployment(transport) as d:
        started = time.monotonic()
        doomed = d.server()
        survivor = d.server()
        d.worker()
        d.relay()
        people = [d.new_user() for _ in range(2)]
        targets = [(user, d.ready_workspace(survivor, user)) for user in people]
        for user in people:
            d.client(user, doomed, survivor)
            d.client(user, doomed, survivor)
            d.client(user, survivor, doomed)

        def kill_at(n: int) -> None:
            if n == 8:
                doomed.process.kill()
                doomed.process.wait(10)
                doomed.stopped = True
                d.notes.append("server SIGKILLed with 4 of 6 sockets connected to it")

        d.stream(survivor, targets, 24, 0.1, during=kill_at)
        reconnected = sum(1 for c in d.clients if c.connects > 1)
        d.notes.append(f"{reconnected} clients reconnected to the other instance, with cursors")
        figures = d.figures(
            "5. server SIGKILLed with sockets connected", started, d.wait_converged()
        )
        return d.measure_resume(figures, survivor)


def database_unreachable(transport: str, seconds: float = 7.0) -> Figures:
    """6. The database is unreachable for 7 s for every process, during a stream.

    Longer than the reconnection backoff's 5 s ceiling and than the 3 s redelivery and 4 s
    lease of the deployment: leases lapse and work comes back while nothing can be recorded.
    """
    with Deployment(transport, database_proxy=True) as d:
        started = time.monotonic()
        server, targets = _setup(d)
        proxy = d.database_proxy
        assert proxy is not None
        cut = threading.Timer(2.0, proxy.cut)
        restore = threading.Timer(2.0 + seconds, proxy.restore)
        cut.start()
        restore.start()
        d.stream(server, targets, int((seconds + 6) / 0.4), 0.4)
        restore.join()
        d.notes.append(f"database unreachable for {seconds:.0f} s")
        return d.figures(
            f"6. database unreachable for {seconds:.0f} s", started, d.wait_converged()
        )


POISON_BODIES = (
    b"this is not JSON",
    b'{"schema": 1, "routing_key": "document.uploaded", "event_id": "x",'
    b' "occurred_at": "2026-01-01T00:00:00+00:00", "message": {"document_id": "seven"}}',
    b"[1, 2, 3]",
)


def poison_message(transport: str) -> Figures:
    """7. Poison bodies on the work queue and on the status broadcast, among good work."""
    with Deployment(transport) as d:
        started = time.monotonic()
        server, targets = _setup(d)
        broker: Any = d.container.broker()

        def poison(n: int) -> None:
            if n % 4 == 0:
                body = POISON_BODIES[(n // 4) % len(POISON_BODIES)]
                publish_raw(broker, "document.uploaded", body)
                publish_raw(broker, "document.status.updated", body)
                d.notes.append("poison work + status body published")

        d.stream(server, targets, 16, 0.1, during=poison)
        alive = all(p.popen.poll() is None for p in d.processes)
        d.notes.append("every process still running" if alive else "a process died")
        figures = d.figures("7. poison messages among good ones", started, d.wait_converged())
        figures.converged = figures.converged and alive
        return figures


def concurrent_workers(transport: str) -> Figures:
    """8. Two workers handle the same document at once (a duplicated work request)."""
    with Deployment(transport) as d:
        started = time.monotonic()
        server, targets = _setup(d, workers=2)
        publisher = d.container.publisher()
        storage_root = d.workdir / "files"

        def duplicate_work(n: int) -> None:
            document_id = uploaded[-1] if uploaded else None
            if document_id is None:
                return
            with d.database.session_factory() as session:
                from sqlalchemy import select

                from adapters.sql.records import documents

                row = session.execute(select(documents).where(documents.c.id == document_id)).one()
            publisher.publish(
                DocumentUploaded(
                    document_id=row.id,
                    user_id=row.user_id,
                    workspace_id=row.workspace_id,
                    file_path=str(storage_root / row.storage_key),
                    version=1,
                )
            )
            d.notes.append("work request duplicated")

        uploaded: list[int] = []
        for n in range(16):
            user, workspace_id = targets[n % len(targets)]
            document_id = d.upload(server, user, workspace_id, n)
            if document_id is not None:
                uploaded.append(document_id)
                duplicate_work(n)
            time.sleep(0.05)
        converged = d.wait_converged()
        conflicts = _conflicting_versions(d.observer.events())
        d.notes.append(f"{conflicts} versions announced with two different states")
        figures = d.figures("8. two workers on one document at once", started, converged)
        figures.converged = figures.converged and conflicts == 0
        return figures


def _conflicting_versions(events: list[StatusEvent]) -> int:
    states: dict[tuple[str, int, int], set[str]] = {}
    for event in events:
        states.setdefault((*entity_key(event), event.version), set()).add(event.status.value)
    return sum(1 for found in states.values() if len(found) > 1)


def client_offline(transport: str) -> Figures:
    """9. A browser-protocol client is offline for 100 updates, then comes back."""
    with Deployment(transport) as d:
        started = time.monotonic()
        server, targets = _setup(d, users=1)
        user, workspace_id = targets[0]
        away = d.client(user, server)
        away.go_offline()
        before = len(d.committed_versions())
        n = 0
        while len(d.committed_versions()) - before < 100:
            d.upload(server, user, workspace_id, n)
            n += 1
            time.sleep(0.1)
            if n > 60:
                raise AssertionError("the stream does not produce updates")
        d.wait_for(lambda: d.unsettled() == 0, 60, "the stream to settle")
        missed = len(d.committed_versions()) - before
        away.go_online()
        d.notes.append(f"client offline for {missed} updates, back with its cursor")
        figures = d.figures("9. client offline for 100 updates", started, d.wait_converged())
        return d.measure_resume(figures, server)


def duplicated_and_reordered(transport: str) -> Figures:
    """10. Every status event is published again, then again newest first."""
    with Deployment(transport) as d:
        started = time.monotonic()
        server, targets = _setup(d)
        d.stream(server, targets, 10, 0.05)
        d.wait_converged()
        events: list[Event] = list(d.observer.events())
        publisher = d.container.publisher()
        publisher.publish_many(events)
        publisher.publish_many(sorted(events, key=lambda e: -getattr(e, "version", 0)))
        d.notes.append(f"{2 * len(events)} duplicate or out-of-order events injected")
        d.wait_for(
            lambda: len(d.observer.events()) >= 3 * len(events), 30, "injected events to arrive"
        )
        time.sleep(1.0)
        figures = d.figures(
            "10. injected duplicate and reordered events", started, d.wait_converged()
        )
        shown_late = sum(client.duplicates for client in d.clients)
        figures.notes.append(f"{shown_late} reached a socket (the server drops stale versions)")
        return figures


def restart_storm(
    transport: str,
    *,
    users: int = 10,
    documents: int = 2000,
    sockets_per_user: int = 30,
    changed_per_user: int = 20,
) -> Figures:
    """14. A server restarts under 300 sockets whose users own 2,000 documents each.

    300 sockets are a storm for one server (every one back within the same two seconds) and
    several per user and scope, which is what shared feed reads need; the test process that
    plays the browsers runs a thread per socket, and three transports' thousand each starved
    a two-core machine.

    The documents are bulk-loaded into the database. While the server is down some of them
    change (retried, as through the API, with the relay publishing to nobody); then every
    socket comes back with its cursor, all within the same two seconds of backoff.
    """
    with Deployment(transport) as d:
        started = time.monotonic()
        port = free_port()
        # 100 sockets per user is the default cap; it is not what this scenario measures.
        cap = ("--max-sockets-per-user", str(2 * sockets_per_user))
        server = d.server(*cap, port=port)
        provisioner = d.worker()
        d.relay()
        people = [d.new_user() for _ in range(users)]
        stored: dict[int, list[int]] = {}
        for user in people:
            workspace_id = d.ready_workspace(server, user)
            stored[user] = insert_documents(
                d.database_url, user_id=user, workspace_id=workspace_id, count=documents
            )
        # No worker from here on: the retries below stay as the answers must state them.
        provisioner.stop()
        loaded = d.committed_versions()
        for user in people:
            # One user's sockets at a time: the first connections are not what is measured.
            batch = [d.client(user, server, wait=False) for _ in range(sockets_per_user)]
            d.wait_for(partial(_all_answered, batch), 60, "every socket answered")
        server.stop()
        stride = documents // changed_per_user
        changed = {
            user: ids[stride // 2 :: stride][:changed_per_user] for user, ids in stored.items()
        }
        use_cases = d.container.documents()
        for user, ids in changed.items():
            for document_id in ids:
                retried = use_cases.retry(user_id=user, document_id=document_id)
                if isinstance(retried, Err):
                    raise AssertionError(f"retry of document {document_id}: {retried.error}")
        d.wait_for(lambda: d.unsent() == 0, 60, "the relay to publish the changes")
        restarting = time.monotonic()
        restarted = d.server(*cap, port=port)
        ready = time.monotonic()
        d.wait_for(
            lambda: all(
                c.links[-1].answered_at is not None and len(c.links) > 1 for c in d.clients
            ),
            90,
            "every socket answered after the restart",
        )
        # From the first socket let in again (some are, before /readyz is first polled) to
        # the last one answered.
        reopened = min(c.links[-1].opened_at for c in d.clients)
        answered = max(c.links[-1].answered_at or ready for c in d.clients)
        reads = int(restarted.metric("status_feed_reads_total"))
        faults: list[str] = []
        for user in people:
            truth = d.db_view(user)
            scope = f"workspace:{d.workspaces_of[user][0]}"
            exact = {("document", document_id) for document_id in changed[user]}
            for client in d.clients_of(user):
                link = client.links[-1]
                if not link.resumed:
                    faults.append(f"answered {link.modes}")
                elif link.answered[scope] != exact:
                    faults.append(f"answered {len(link.answered[scope])} of {len(exact)} changes")
                elif not client.shows(truth):
                    faults.append("shows other than the database")
        wrong = len(faults)
        d.notes.append(
            f"{users} users × {documents} documents, {len(d.clients)} sockets; "
            f"{sum(map(len, changed.values()))} documents changed while the server was down; "
            f"server ready {ready - restarting:.1f} s after the restart began"
        )
        if wrong:
            d.notes += faults
        figures = d.figures(
            f"14. server restarted under {len(d.clients)} sockets, {documents} documents per user",
            started,
            wrong == 0,
            before=loaded,
        )
        figures.resume_seconds = answered - reopened
        figures.feed_reads = reads
        return d.measure_resume(figures, restarted)


def _all_answered(clients: list[StatusClient]) -> bool:
    return all(client.connected.is_set() for client in clients)


# Hostile broker input: what a foreign producer with access to the broker can send. Each body
# goes to the work queue and to the status broadcast; afterwards every worker, relay and server
# must still be running, a normal upload must end ready, and every view must equal the database.
WORK_KEY = "document.uploaded"
STATUS_KEY = "document.status.updated"
NESTED_BODY = b"[" * 100_000
# RabbitMQ's default max_message_size (128 MiB, also this installation's setting); AMQP does not
# tell a client, so it is stated here.
RABBITMQ_MAX_MESSAGE_BYTES = 128 * 1024 * 1024
ABSURD_VERSION = 10**12


def _publish_hostile(d: Deployment, label: str, body: bytes, keys: tuple[str, ...]) -> int:
    """Publish ``body`` on each key; a refusal by the client or the broker is noted, not raised.

    Returns how many publishes the broker accepted.
    """
    accepted = 0
    for key in keys:
        where = "work queue" if key == WORK_KEY else "status broadcast"
        try:
            publish_raw(d.container.broker(), key, body)
        except Exception as exc:  # the publisher may refuse: what matters is the consumers
            d.notes.append(f"{label} on the {where} refused at publish: {type(exc).__name__}")
        else:
            accepted += 1
            d.notes.append(f"{label} on the {where} accepted by the broker")
    return accepted


def _hostile_run(
    transport: str,
    title: str,
    inject: Callable[[Deployment, list[tuple[int, int]]], None],
    *,
    settings: dict[str, str] | None = None,
    worker_metrics: bool = False,
) -> Figures:
    """Good work before and after ``inject``; every process must survive it."""
    with Deployment(transport, settings=settings) as d:
        started = time.monotonic()
        server, targets = _setup(d, worker_metrics=worker_metrics)
        d.stream(server, targets, 4, 0.1)
        d.wait_for(lambda: d.unsettled() == 0, 90, "the first uploads to settle")
        d.wait_for(lambda: d.unsent() == 0, 60, "the first uploads' events to be published")
        inject(d, targets)
        user, workspace_id = targets[0]
        # Published after what was injected, on the same queues: by the time it is ready every
        # consumer has taken (or refused) the hostile bodies ahead of it.
        after = d.upload(server, user, workspace_id, 99)
        ready_after = after is not None
        if after is not None:
            try:
                d.wait_for(lambda: d.db_status("document", after) == "ready", 60, "upload ready")
            except AssertionError:
                ready_after = False
        converged = d.wait_converged()
        dead = d.dead()
        d.notes.append(f"died: {', '.join(dead)}" if dead else "every process still running")
        d.notes.append(
            "an upload afterwards ended ready" if ready_after else "an upload afterwards NOT ready"
        )
        figures = d.figures(title, started, converged)
        figures.converged = figures.converged and not dead and ready_after
        return figures


def deeply_nested_body(transport: str) -> Figures:
    """11. A body of 100,000 opening brackets on the work queue and the status broadcast."""

    def inject(d: Deployment, _: list[tuple[int, int]]) -> None:
        _publish_hostile(d, "100,000 nested brackets", NESTED_BODY, (WORK_KEY, STATUS_KEY))

    return _hostile_run(transport, "11. deeply nested JSON body (100,000 levels)", inject)


def _nats_max_payload(url: str) -> int:
    async def ask() -> int:
        import nats

        client = await nats.connect(url)
        try:
            return int(client.max_payload)
        finally:
            await client.close()

    return asyncio.run(ask())


def _redis_max_bulk(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        value = client.config_get("proto-max-bulk-len")["proto-max-bulk-len"]
        return int(str(value))
    finally:
        client.close()


def huge_body(transport: str) -> Figures:
    """12. Bodies over the broker's own limit and over the decoder's 1 MiB bound."""

    def inject(d: Deployment, _: list[tuple[int, int]]) -> None:
        keys = (WORK_KEY, STATUS_KEY)
        if transport == "rabbitmq":
            limit = RABBITMQ_MAX_MESSAGE_BYTES
        elif transport == "nats":
            limit = _nats_max_payload(d.broker_url)
        else:
            # 512 MiB by default: far beyond what a test should push through; the decoder's
            # bound is the limit that matters to a consumer.
            limit = _redis_max_bulk(d.broker_url)
            d.notes.append(f"Redis proto-max-bulk-len is {limit >> 20} MiB")
        if transport != "redis":
            body = b"x" * (limit + 1)
            _publish_hostile(d, f"{limit >> 20} MiB + 1 byte (broker limit)", body, keys)
            del body
        body = b"x" * (MAX_BODY_BYTES + 1)
        _publish_hostile(d, "1 MiB + 1 byte (decoder bound)", body, keys)

    return _hostile_run(transport, "12. body over the broker's / decoder's size limit", inject)


def forged_status_event(transport: str) -> Figures:
    """13. Well-formed status events for another user's document, with a fake error text."""

    def inject(d: Deployment, targets: list[tuple[int, int]]) -> None:
        victim = targets[1][0]
        genuine = [
            e
            for e in d.observer.events()
            if isinstance(e, DocumentStatusUpdated) and e.user_id == victim
        ]
        real = max(genuine, key=lambda e: e.version)
        key = ("document", real.document_id)

        def forged(version: int) -> bytes:
            fake = dataclasses.replace(
                real,
                event_id=f"forged{version}",
                version=version,
                status=DocumentProcessingStatus.FAILED,
                error="forged: this document was deleted by an administrator",
            )
            return encode(fake)

        victims = [c for c in d.clients if c.name.startswith(f"u{victim}-")]
        _publish_hostile(
            d, f"forged version {ABSURD_VERSION}", forged(ABSURD_VERSION), (WORK_KEY, STATUS_KEY)
        )
        plausible = real.version + 1
        assert plausible <= MAX_COUNT
        _publish_hostile(d, f"forged version {plausible}", forged(plausible), (STATUS_KEY,))
        shown = sum(
            1
            for c in victims
            if c.wait_until(lambda c: c.view.get(key, (0, ""))[0] == plausible, 5.0)
        )
        # Published before the plausible forgery, so by the time that one is shown (or five
        # seconds passed) the absurd one has been pushed too, were it pushed at all.
        absurd_shown = sum(1 for c in victims if c.view.get(key, (0, ""))[0] == ABSURD_VERSION)
        d.notes.append(f"absurd version reached {absurd_shown} of {len(victims)} victim sockets")
        if absurd_shown:
            d.notes.append("FORGED EVENT SHOWN")
        # Without EVENT_SIGNING_KEY a plausible forgery cannot be told from the relay's own
        # events; the victim's page shows it until its next snapshot of a newer version.
        d.notes.append(
            f"plausible forgery (next version) reached {shown} of {len(victims)} victim sockets"
        )
        for client in victims:
            client.close()
            d.clients.remove(client)
        d.client(victim, d.servers[0])
        if absurd_shown:
            raise AssertionError("an event with an implausible version reached a socket")

    return _hostile_run(transport, "13. forged status event for another user", inject)


# Over the default EVENT_MAX_VERSION (10^9) yet under the decoder's own bound (2^31-1), so it
# is the version guard, not the decoder, that must refuse it.
IMPLAUSIBLE_SIGNED_VERSION = 2_000_000_000
REFUSED_METRIC = re.compile(r'^events_refused_total\{kind="(\w+)",reason="(\w+)"\} (\S+)$', re.M)


def _refused(metrics_url: str) -> Counter[tuple[str, str]]:
    """``events_refused_total`` of one process, by (kind, reason)."""
    text = httpx.get(metrics_url, timeout=5.0).text
    return Counter({(k, r): int(float(n)) for k, r, n in REFUSED_METRIC.findall(text)})


def forged_events_signed(transport: str) -> Figures:
    """15. Forged events where every process has EVENT_SIGNING_KEY: dropped and counted."""
    key = secrets.token_urlsafe(32)

    def inject(d: Deployment, targets: list[tuple[int, int]]) -> None:
        victim, victim_workspace = targets[1]
        document_id = max(entity_id for kind, entity_id in d.db_view(victim) if kind == "document")
        entity = ("document", document_id)
        version, status = d.db_view(victim)[entity]
        stored = d.observer.events()
        real = max(
            (
                e
                for e in stored
                if isinstance(e, DocumentStatusUpdated) and e.document_id == document_id
            ),
            key=lambda e: e.version,
        )

        def forged_status(next_version: int) -> bytes:
            fake = dataclasses.replace(
                real,
                event_id=f"forged{next_version}",
                version=next_version,
                status=DocumentProcessingStatus.FAILED,
                error="forged: this document was deleted by an administrator",
            )
            return encode(fake)

        forged_work = encode(
            DocumentUploaded(
                document_id=document_id,
                user_id=victim,
                workspace_id=victim_workspace,
                file_path="/etc/passwd",
                version=1,
            )
        )
        stranger = EventSigner("a key that is not the deployment's")
        ours = EventSigner(key)
        status_forgeries = {
            "unsigned": forged_status(version + 1),
            "bad_signature": stranger.sign(forged_status(version + 1)),
            "implausible_version": ours.sign(forged_status(IMPLAUSIBLE_SIGNED_VERSION)),
        }
        work_forgeries = {"unsigned": forged_work, "bad_signature": stranger.sign(forged_work)}
        noted = len(d.notes)
        accepted = 0
        for reason, body in status_forgeries.items():
            accepted += _publish_hostile(d, f"forged {reason}", body, (STATUS_KEY, WORK_KEY))
        for reason, body in work_forgeries.items():
            accepted += _publish_hostile(d, f"forged work ({reason})", body, (WORK_KEY,))
        refused_at_publish = [n for n in d.notes[noted:] if "refused at publish" in n]
        d.notes[noted:] = [
            f"{accepted} of 8 forgeries accepted by the broker (status events unsigned, signed "
            "with another key, and signed of version 2·10⁹, each on the broadcast and the work "
            "queue; work requests unsigned and signed with another key)",
            *refused_at_publish,
        ]

        # The server drops each forged status event and counts it; the work queue's consumers
        # (the worker, and the server's own) dead-letter every unverified body and count it.
        server_metrics = f"{d.servers[0].base_url}/metrics"
        consumers = [server_metrics, *(f"http://127.0.0.1:{p}/metrics" for p in d.metrics_ports)]
        expected_status = Counter({("status", reason): 1 for reason in status_forgeries})
        expected_work = Counter({("work", "unsigned"): 2, ("work", "bad_signature"): 2})

        def refused() -> Counter[tuple[str, str]]:
            total: Counter[tuple[str, str]] = Counter()
            for url in consumers:
                total.update(_refused(url))
            return total

        d.wait_for(
            lambda: _refused(server_metrics) >= expected_status,
            30,
            "the server to refuse every forged status event",
        )
        d.wait_for(lambda: refused() >= expected_work, 30, "every forged work request refused")
        counted = refused()
        d.notes.append(
            "refused and counted: "
            + ", ".join(f"{kind} {reason} {n}" for (kind, reason), n in sorted(counted.items()))
        )
        letters = [
            letter.reason.split(":", 1)[0]
            if letter.reason.startswith(("unsigned", "bad_"))
            else "no handler"
            for queue in WORK_QUEUES
            for letter in d.container.broker().dead_letters().of(queue)
        ]
        by_reason = ", ".join(f"{n} {reason}" for reason, n in sorted(Counter(letters).items()))
        d.notes.append(f"{len(letters)} dead-lettered ({by_reason})")
        if len(letters) < sum(expected_work.values()):
            raise AssertionError(f"forged work dead-lettered {len(letters)} times: {letters}")
        victims = [c for c in d.clients if c.name.startswith(f"u{victim}-")]
        shown = sum(1 for c in victims if c.view.get(entity) != (version, status))
        d.notes.append(f"a forgery reached {shown} of {len(victims)} victim sockets")
        if shown:
            raise AssertionError("a forged event reached a socket")

    return _hostile_run(
        transport,
        "15. forged events, EVENT_SIGNING_KEY on every process",
        inject,
        settings={"EVENT_SIGNING_KEY": key},
        worker_metrics=True,
    )


SCENARIOS: tuple[Scenario, ...] = (
    worker_killed_after_commit,
    worker_killed_before_commit,
    relay_killed_between_publish_and_mark,
    broker_cut,
    server_killed,
    database_unreachable,
    poison_message,
    concurrent_workers,
    client_offline,
    duplicated_and_reordered,
    deeply_nested_body,
    huge_body,
    forged_status_event,
    restart_storm,
    forged_events_signed,
)


def in_order_for(transport: str) -> list[tuple[int, Scenario]]:
    """The scenarios, numbered, in the order ``transport`` runs them.

    When every transport runs at once (as in CI) each starts at a different place, so the
    heaviest scenarios (the cut broker, the restart storm) do not all fall at the same time.
    """
    numbered = list(enumerate(SCENARIOS, start=1))
    shift = TRANSPORTS.index(transport) * len(numbered) // len(TRANSPORTS)
    return numbered[shift:] + numbered[:shift]
