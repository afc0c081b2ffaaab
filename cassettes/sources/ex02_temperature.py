"""Notebook 02: one headline request at reasoning effort "none", replayed six times at temperature 0.2 and six at 1.2 (authored variations, labelled as such)."""

from __future__ import annotations

from labkit.course.ex02 import DEMO_RUNS, DEMO_TEMPERATURES, one_headline_request

# At low temperature the most likely wording wins almost every time (not always: sampling still runs).
LOW_REPLIES = [
    "Your Sales Managers Weren't Hired to Type. Stop Making Them.",
    "Your Sales Managers Weren't Hired to Type. Stop Making Them.",
    "Your Sales Managers Weren't Hired to Type. Stop Making Them.",
    "Your Sales Managers Weren't Hired to Type. Let Them Sell.",
    "Your Sales Managers Weren't Hired to Type. Stop Making Them.",
    "Your Sales Managers Weren't Hired to Type. Stop Making Them.",
]
HIGH_REPLIES = [
    "Your CRM Is Full. Your Pipeline Isn't. Guess Why.",
    "Stop Paying Sales Managers to Be Data Clerks",
    "Manual Data Entry: The Quota Killer Nobody Budgets For",
    "Your Best Reps Spend Fridays Typing. Fix That.",
    "Sell More, Type Less: AI That Updates Your CRM",
    "Every Keystroke in the CRM Is a Call Not Made",
]


def build(a) -> None:
    for t, replies in zip(DEMO_TEMPERATURES, (LOW_REPLIES, HIGH_REPLIES), strict=True):
        assert len(replies) == DEMO_RUNS
        for i, reply in enumerate(replies, 1):
            a.call(lambda c, t=t: c.chat.completions.create(**one_headline_request(t)), reply,
                   label=f"authored variation {i} of {len(replies)} at temperature {t}")
