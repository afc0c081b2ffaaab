"""Lesson 07, SaaS patterns: the models, tiers, prompts and SEO schema of the three use cases.

Exercise 07, its recordings (``cassettes/sources/ex07.py``), notebook 07 and the checks all
read these. The recorded answers live in the cassette source. The contract below is what the
checks hold a learner's code to: they draw their scenarios from it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .ex06 import CHEAP, PREMIUM
from .models import LESSON_FLAGSHIP

# PREMIUM (the course's flagship) and CHEAP (its cheapest model) are lesson 06's: the premium
# tier and the writing stage use PREMIUM; the free tier, the light stages and tenants' requests CHEAP.

# --------------------------------------------------------------------------- 1. billing

#: The model tenants' requests are answered by (TenantBilling's default), at its default effort.
BILLING_MODEL = CHEAP
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

#: The lesson's tiers, as data: daily allowance, model, output limit and reasoning effort. The
#: limit covers reasoning tokens too; the free tier answers at effort "none" (no reasoning tokens,
#: so its 200 tokens are all answer), the paid tiers think a little or more on PREMIUM.
TIER_LIMITS: dict[str, dict[str, Any]] = {
    "free": {"requests_per_day": 10, "model": CHEAP, "max_completion_tokens": 200, "reasoning_effort": "none"},
    "pro": {"requests_per_day": 500, "model": PREMIUM, "max_completion_tokens": 1000, "reasoning_effort": "low"},
    "enterprise": {"requests_per_day": 10000, "model": PREMIUM, "max_completion_tokens": 4000, "reasoning_effort": "medium"},
}
#: The tier an unknown tier name gets.
DEFAULT_TIER = "free"
#: What a user over the daily allowance gets back (with "limit": the tier's requests_per_day).
LIMIT_REACHED = {"error": "Daily limit reached", "upgrade_url": "/upgrade-to-pro"}
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
#: Each stage's model: PREMIUM only for writing (each at the model's default reasoning effort).
STAGE_MODELS = {"research": CHEAP, "outline": CHEAP, "write": PREMIUM, "seo": CHEAP}
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


# --------------------------------------------------------------------------- the contract

#: Tenant ids and feature names the checks use besides plain ones: quotes, SQL and LIKE
#: metacharacters, spaces at the ends, unicode, a very long one. Parameterized SQL keeps every one
#: of them apart, exactly as given.
TENANT_IDS = (
    "acme", "o'reilly media", 'the "best" co', "x'); DROP TABLE tenants;--", "50% off_", "acme%", " acme ",
    "ünïcødé GmbH", "株式会社テスト", "t" * 500,
)
FEATURE_NAMES = ("ai_content_generation", "ai_summary", "it's \"quoted\"; --", "résumé")
#: A call that fails gives back the credits it took and records no usage; these are the failures
#: the checks script (labkit.faults steps), final and transient alike.
FAILURES = ("400", "401", "404", "429", "500", "timeout")
