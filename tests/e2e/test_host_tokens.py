"""A real server configured with the host application's JWKS: its tokens pass, bad ones get 401."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.conftest import ServerProcess, start_server
from tests.support.host_tokens import (
    AUDIENCE,
    ISSUER,
    HostIssuer,
    host_environment,
    unsigned_token,
)

pytestmark = pytest.mark.slow

HOST = HostIssuer()


@pytest.fixture(scope="module")
def host_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("host-tokens")
    environ = {**host_environment(HOST.write_jwks(directory)), "JWT_LEEWAY_SECONDS": "2"}
    process = start_server(directory, environ=environ)
    yield process
    process.stop()


def _api(server: ServerProcess, token: str | bytes) -> httpx.Response:
    authorization = b"Bearer " + (token.encode() if isinstance(token, str) else token)
    return httpx.get(
        f"{server.base_url}/api/session", headers={b"Authorization": authorization}, timeout=10
    )


def _socket_status(server: ServerProcess, token: str) -> int:
    try:
        with connect(server.ws_url(token), open_timeout=10) as ws:
            frame = json.loads(ws.recv(timeout=10))
            assert frame["type"] == "snapshot"
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def test_a_host_rs256_token_from_the_jwks_is_accepted_on_http_and_the_socket(
    host_server: ServerProcess,
) -> None:
    token = HOST.token("4242", role="operator")
    answer = _api(host_server, token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == 4242
    assert _socket_status(host_server, token) == 101


def test_the_built_in_tokens_still_work_beside_the_hosts(host_server: ServerProcess) -> None:
    token = host_server.token(4243)
    assert _api(host_server, token).json()["user_id"] == 4243
    assert _socket_status(host_server, token) == 101


REFUSED: dict[str, Callable[[], str]] = {
    "wrong audience": lambda: HOST.token(aud="another-service"),
    "wrong issuer": lambda: HOST.token(iss="https://elsewhere.example"),
    "expired": lambda: HOST.token(issued_ago=900),
    "not yet valid": lambda: HOST.token(nbf=int(time.time()) + 300),
    "alg none": lambda: unsigned_token(iss=ISSUER, aud=AUDIENCE, sub="7", exp=4_000_000_000),
    "key not in the set": lambda: HostIssuer(rsa_kid="rotated-away").token(),
    "another key under a known id": lambda: HostIssuer().token(),
    "old format": lambda: "v1.eyJzdWIiOjd9.c2lnbmF0dXJl",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_host_token_is_refused_with_401_on_http_and_the_socket(
    host_server: ServerProcess, case: str
) -> None:
    token = REFUSED[case]()
    answer = _api(host_server, token)
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    assert isinstance(answer.json()["error"], str)
    assert _socket_status(host_server, token) == 401


@pytest.mark.parametrize(
    "raw", ["ünïcödé".encode(), b"\xff\xfe garbage \xe9", b"a.b.c", b"x" * 20_000]
)
def test_a_non_ascii_or_garbage_bearer_token_is_a_json_401(
    host_server: ServerProcess, raw: bytes
) -> None:
    answer = _api(host_server, raw)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "malformed token"


def test_a_server_with_an_unreadable_jwks_file_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="JWT_JWKS_FILE"):
        start_server(tmp_path, environ={"JWT_JWKS_FILE": str(tmp_path / "missing.json")})
