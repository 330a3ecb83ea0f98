"""The transport contract, in process."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.memory.broker import InMemoryBroker
from tests.contracts.backlog import BacklogContract
from tests.contracts.broker import (
    MAX_DELIVERIES,
    BrokerContract,
    BrokerFactory,
    DeadLettersContract,
)


class TestInMemoryBroker(BrokerContract, DeadLettersContract, BacklogContract):
    supports_connection_cut = False

    @pytest.fixture
    def make_broker(self) -> BrokerFactory:
        # One process, one broker: every "instance" shares it, as threads of a process would.
        shared = InMemoryBroker(max_deliveries=MAX_DELIVERIES)

        def make(**_: Any) -> InMemoryBroker:
            return shared

        return make
