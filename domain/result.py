"""A hand-written ``Result[T, E] = Ok[T] | Err[E]`` for outcomes that may fail expectedly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, NoReturn, TypeAlias, TypeVar

T = TypeVar("T")
E = TypeVar("E")
U = TypeVar("U")
F = TypeVar("F")


class UnwrapError(Exception):
    """Raised when a value is taken from an ``Err`` or an error from an ``Ok``."""


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    """The successful outcome, holding ``value``."""

    value: T

    def is_ok(self) -> Literal[True]:
        return True

    def is_err(self) -> Literal[False]:
        return False

    def unwrap(self) -> T:
        return self.value

    def unwrap_or(self, default: object) -> T:
        return self.value

    @property
    def error(self) -> NoReturn:
        # Typed NoReturn so that ``result.error`` on a ``Result[T, E]`` is plainly ``E``.
        raise UnwrapError(f"an Ok has no error (value: {self.value!r})")

    def map(self, fn: Callable[[T], U]) -> Ok[U]:
        return Ok(fn(self.value))

    def and_then(self, fn: Callable[[T], Result[U, F]]) -> Result[U, F]:
        return fn(self.value)


@dataclass(frozen=True, slots=True)
class Err(Generic[E]):
    """The failed outcome, holding ``error``."""

    error: E

    def is_ok(self) -> Literal[False]:
        return False

    def is_err(self) -> Literal[True]:
        return True

    def unwrap(self) -> NoReturn:
        raise UnwrapError(f"called unwrap() on an Err: {self.error!r}")

    def unwrap_or(self, default: U) -> U:
        return default

    # ``Any`` so that on a ``Result`` the callback's type is inferred from the ``Ok`` side.
    def map(self, fn: Callable[[Any], Any]) -> Err[E]:
        return self

    def and_then(self, fn: Callable[[Any], Any]) -> Err[E]:
        return self


Result: TypeAlias = Ok[T] | Err[E]
