from __future__ import annotations

import pytest

from domain.result import Err, Ok, Result, UnwrapError


def parse(text: str) -> Result[int, str]:
    return Ok(int(text)) if text.isdigit() else Err(f"{text!r} is not a number")


def test_ok_holds_its_value() -> None:
    result = parse("41")
    assert result.is_ok()
    assert not result.is_err()
    assert result.unwrap() == 41
    assert result.unwrap_or(0) == 41
    assert result.map(lambda n: n + 1) == Ok(42)
    assert result.and_then(lambda n: parse(str(n * 2))) == Ok(82)


def test_err_holds_its_error_and_refuses_unwrap() -> None:
    result = parse("x")
    assert result.is_err()
    assert not result.is_ok()
    assert result.error == "'x' is not a number"
    assert result.unwrap_or(7) == 7
    assert result.map(lambda n: n + 1) == result
    assert result.and_then(lambda n: parse(str(n))) == result
    with pytest.raises(UnwrapError, match="not a number"):
        result.unwrap()


def test_an_ok_has_no_error() -> None:
    with pytest.raises(UnwrapError):
        _ = Ok(1).error


def test_results_are_frozen_slotted_and_matchable() -> None:
    ok: Result[int, str] = Ok(3)
    with pytest.raises(AttributeError):
        ok.value = 4  # type: ignore[misc,union-attr]
    assert not hasattr(ok, "__dict__")
    match parse("x"):
        case Ok(value):
            raise AssertionError(f"unexpected {value}")
        case Err(error):
            assert "number" in error


def test_isinstance_narrows_for_the_type_checker() -> None:
    result = parse("5")
    if isinstance(result, Ok):
        doubled: int = result.value * 2
        assert doubled == 10
    else:
        raise AssertionError(result.error)
