"""Lesson 07, SaaS patterns: the models, tiers, prompts and SEO schema of the three use cases.

Exercise 07, its recordings (``cassettes/sources/ex07.py``), notebook 07 and the checks all
read these. The recorded answers live in the cassette source.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .models import LESSON_FLAGSHIP, REASONING_FAST, REASONING_FLAGSHIP

# --------------------------------------------------------------------------- 1. billing

#: The model tenants' requests are answered by (TenantBilling's default).
BILLING_MODEL = REASONING_FAST
#: A tenant's request for marketing copy (feature "ai_content_generation").
MARKETING = [{"role": "user", "content": "Generate a short marketing email announcing Planwise's new AI task planner to existing customers."}]
#: The meeting notes a tenant asks to have summarized.
MEETING_NOTES = (
    "Weekly sync, 3 Nov. Attendees: Dana, Luis, Priya. Mobile release slips one week: push-notification bug on Android 15. "
    "Luis to pair with QA on it. Priya finished the onboarding checklist redesign; usability test Thursday. "
    "Dana asks for a decision on dropping the legacy CSV importer by Friday."
)
#: A tenant's request for a summary (feature "ai_summary").
SUMMARY = [{"role": "user", "content": f"Summarize these meeting notes in three bullet points:\n\n{MEETING_NOTES}"}]

# --------------------------------------------------------------------------- 2. tiers

#: The lesson's tiers, as data: daily allowance, model, output limit and reasoning effort.
TIER_LIMITS: dict[str, dict[str, Any]] = {
    "free": {"requests_per_day": 10, "model": REASONING_FAST, "max_completion_tokens": 200, "reasoning_effort": "minimal"},
    "pro": {"requests_per_day": 500, "model": REASONING_FLAGSHIP, "max_completion_tokens": 1000, "reasoning_effort": "low"},
    "enterprise": {"requests_per_day": 10000, "model": REASONING_FLAGSHIP, "max_completion_tokens": 4000, "reasoning_effort": "medium"},
}
#: The request every tier is asked in notebook 07 and the checks.
STATUS = [{"role": "user", "content": "Draft a two-sentence status update for the client on the website redesign project: design approved, development 60% done, launch still set for 1 December."}]
#: The lesson's pro-tier request as written: max_tokens on a reasoning model, which the API rejects (400).
LESSON_PRO_REQUEST: dict[str, Any] = {"model": LESSON_FLAGSHIP, "messages": STATUS, "max_tokens": 1000}

# --------------------------------------------------------------------------- 3. the content pipeline

#: The blog post's topic in notebook 07, the recordings and the checks.
TOPIC = "How small teams can run effective weekly planning meetings"


class SEOFields(BaseModel):
    """What the SEO stage must return (Structured Outputs guarantees this shape)."""

    title: str
    meta_description: str
    keywords: list[str]


#: The pipeline's stages, in order.
STAGES = ("research", "outline", "write", "seo")
#: Each stage's model: the flagship only for writing.
STAGE_MODELS = {"research": REASONING_FAST, "outline": REASONING_FAST, "write": REASONING_FLAGSHIP, "seo": REASONING_FAST}
#: Each stage's system message.
SYSTEM_PROMPTS = {
    "research": "You are a research assistant. Find the key facts and angles on a topic.",
    "outline": "You are a content strategist. Turn research into a clear article outline.",
    "write": "You are a professional writer. Write engaging, accurate articles of about 300 words in Markdown.",
    "seo": "You are an SEO specialist. Write a title under 60 characters, a meta description under 160 characters and 5 to 8 keywords.",
}


def stage_messages(stage: str, topic: str, previous: str = "") -> list[dict[str, str]]:
    """The messages for one stage; `previous` is the text the stage before produced."""
    user = {
        "research": f"Research topic: {topic}. List 8 key points.",
        "outline": f"Topic: {topic}\n\nResearch:\n{previous}\n\nCreate a detailed outline.",
        "write": f"Outline:\n{previous}\n\nWrite the complete article.",
        "seo": f"Article:\n{previous}\n\nGenerate the SEO elements.",
    }[stage]
    return [{"role": "system", "content": SYSTEM_PROMPTS[stage]}, {"role": "user", "content": user}]
