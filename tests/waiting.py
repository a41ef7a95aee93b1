"""Waiting for something to become true in another thread or process, without fixed sleeps."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Call `condition` every `interval` seconds until it returns something truthy; return that.

    After `timeout` seconds it fails the test with an AssertionError naming the condition and
    its last answer. The timeout is a bound for a stuck test, not a speed requirement: make it
    generous. Conditions often query the app, which costs CPU the other tests could use; pass
    a shorter `interval` only to catch a state that does not last.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"waited {timeout:g} s for {_describe(condition)}; it last gave {value!r}"
            )
        time.sleep(interval)


def _describe(condition: Callable[[], object]) -> str:
    """The condition's name, or for a lambda the source line that holds it."""
    name = getattr(condition, "__name__", repr(condition))
    if name != "<lambda>":
        return name
    try:
        source = inspect.getsource(condition)
    except (OSError, TypeError):
        return "a lambda"
    return " ".join(source.split()).rstrip(",")


class Sleeps(list[float]):
    """A stand-in for `time.sleep` that records every wait asked for and waits only a token
    amount (at most `longest` seconds), so retry back-offs are checked without being sat out."""

    def __init__(self, longest: float = 0.05) -> None:
        super().__init__()
        self.longest = longest

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, self.longest))
