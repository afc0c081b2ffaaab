"""Exercise 01, hidden check: the first call's requests with another authored answer, to tell real calls from hard-coded ones."""

from __future__ import annotations

from ex01 import first_calls

VARIANT = "Your Team's Deadlines, Finally Under Control: A 15-Minute Demo"


def build(a) -> None:
    first_calls(a, VARIANT, why=": variant answer used by a hidden check")
