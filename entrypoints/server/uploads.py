"""Streaming a multipart upload into storage without ever holding the whole body in memory.

The body is parsed as it arrives. Once the ``file`` part's headers are in, the upload is
checked (workspace, readiness, file type) before any of its bytes are kept; the bytes then go
to a spooled temporary file (memory up to a small bound, disk beyond) and are counted, so an
upload over the limit is refused as soon as it crosses it. A refused request's remaining body
is read and discarded (up to a bound) so that the client reliably gets the answer.
"""

from __future__ import annotations

import contextlib
import errno
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from application.documents import Documents
from domain.entities import Document
from domain.result import Err
from entrypoints.server.errors import NO_SPACE, ApiError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = b"file"
FORM_OVERHEAD_BYTES = 64 * 1024
SPOOL_MEMORY_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class _FormReader:
    """Callbacks for the streaming parser: keeps the ``file`` part's name and bytes."""

    def __init__(self) -> None:
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_file = False
        self.file_seen = False
        self.filename = ""
        self.pending: list[bytes] = []
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") == FILE_FIELD and not self.file_seen:
            self.file_seen = True
            self._in_file = True
            self.filename = params.get(b"filename", b"").decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        # Bytes of any other field are not needed and are not kept.
        if self._in_file:
            self.pending.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self.ended = True


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(415, "upload as multipart/form-data with the file in the 'file' field")
    return boundary


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "Content-Length is not a number") from None


async def _discard(stream: AsyncIterator[bytes]) -> None:
    drained = 0
    async for chunk in stream:
        drained += len(chunk)
        if drained > DRAIN_LIMIT_BYTES:
            return


def _read_back(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(READ_CHUNK_BYTES):
        yield chunk


async def receive_upload(
    request: Request,
    documents: Documents,
    *,
    user_id: int,
    workspace_id: int,
    max_bytes: int,
) -> Document:
    """Store the request's ``file`` as a new document, or raise ``ApiError``."""
    stream = request.stream()
    try:
        boundary = _boundary(request)
        declared = _declared_length(request)
        if declared is not None and declared > max_bytes + FORM_OVERHEAD_BYTES:
            raise ApiError(413, f"file exceeds the upload limit of {max_bytes} bytes")
        with (
            _no_space_is_507(),
            tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool,
        ):
            filename = await _spool_file(
                stream,
                boundary=boundary,
                spool=spool,
                documents=documents,
                user_id=user_id,
                workspace_id=workspace_id,
                max_bytes=max_bytes,
            )
            stored = await run_in_threadpool(
                lambda: documents.upload(
                    user_id=user_id,
                    workspace_id=workspace_id,
                    filename=filename,
                    content=_read_back(spool),
                    size=spool.tell(),
                )
            )
    except ApiError:
        await _discard(stream)
        raise
    if isinstance(stored, Err):
        raise ApiError.of(stored.error)
    return stored.value


@contextlib.contextmanager
def _no_space_is_507() -> Iterator[None]:
    # A full disk, whether spooling or storing: the store left nothing behind (see FileStorage).
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise ApiError(507, NO_SPACE) from None


async def _spool_file(
    stream: AsyncIterator[bytes],
    *,
    boundary: bytes,
    spool: IO[bytes],
    documents: Documents,
    user_id: int,
    workspace_id: int,
    max_bytes: int,
) -> str:
    reader = _FormReader()
    parser = MultipartParser(boundary, reader.callbacks())
    checked = False
    received = 0
    async for chunk in stream:
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise ApiError(400, f"malformed multipart body: {exc}") from None
        if reader.file_seen and not checked:
            checked = True
            refusal = await run_in_threadpool(
                lambda: documents.check_upload(
                    user_id=user_id, workspace_id=workspace_id, filename=reader.filename
                )
            )
            if isinstance(refusal, Err):
                raise ApiError.of(refusal.error)
        for piece in reader.pending:
            received += len(piece)
            if received > max_bytes:
                raise ApiError(413, f"file exceeds the upload limit of {max_bytes} bytes")
            spool.write(piece)
        reader.pending.clear()
    if not reader.ended:
        raise ApiError(400, "malformed multipart body: it ends before its closing boundary")
    if not reader.file_seen:
        raise ApiError(422, "the upload needs a 'file' field")
    return reader.filename
