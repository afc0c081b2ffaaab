"""Optional LLM-judge checks: a rubric graded through the same client, with a typed verdict.

Deterministic checks stay the default. A judge check sends the rubric and the text to a model
with Structured Outputs (``chat.completions.parse`` with a pydantic model), so the verdict's
shape is guaranteed and the exchange is replayable: offline, a text the course has a recording
for is judged from the recording; any other text gives ``skip`` (never a made-up verdict).
"""

from __future__ import annotations

from openai import OpenAI
from pydantic import BaseModel, Field

from ..replay import ReplayMiss
from . import Outcome

JUDGE_MODEL = "gpt-4.1-mini"
JUDGE_SYSTEM = (
    "You grade a piece of text against a rubric for a programming course. Judge only what the "
    "rubric asks. Be strict: pass only if every criterion is clearly met. Quote the text as evidence."
)


class Verdict(BaseModel):
    """What the judge returns: a decision, per-criterion notes and evidence."""

    passed: bool
    criteria_met: list[str] = Field(description="Rubric criteria the text clearly meets")
    criteria_missed: list[str] = Field(description="Rubric criteria the text misses or only partly meets")
    evidence: str = Field(description="A short quote from the text supporting the decision")


def judge_messages(rubric: str, text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"Rubric:\n{rubric}\n\nText to grade:\n<<<\n{text}\n>>>"},
    ]


def judge(client: OpenAI, rubric: str, text: str, *, model: str = JUDGE_MODEL) -> Outcome:
    """Grade ``text`` against ``rubric``; ``skip`` when replay has no recording for it."""
    try:
        completion = client.chat.completions.parse(
            model=model, messages=judge_messages(rubric, text), response_format=Verdict, temperature=0
        )
    except ReplayMiss:
        return Outcome("skip", "the judge has no recording for this text offline; run live to have it judged")
    verdict = completion.choices[0].message.parsed
    if verdict is None:
        return Outcome("error", "the judge refused or returned no verdict")
    missed = "; ".join(verdict.criteria_missed) or "none"
    if verdict.passed:
        return Outcome("pass", f"judge: meets {len(verdict.criteria_met)} criteria (\"{verdict.evidence[:80]}\")")
    return Outcome("fail", f"judge: missed {missed}")
