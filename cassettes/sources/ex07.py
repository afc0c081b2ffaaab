"""Exercise 07 and notebook 07: tenant billing, tier-gated requests and the four-stage content pipeline.

The requests are labkit.course.ex07's; the answers are written here (reasoning tokens are derived
from each request's model and effort). Every task is recorded as the reference solution sends it
(Chat Completions) and once on the Responses API, so code written on either API is answered (the
checks' simulator adapts a recording to the model and parameters actually sent). The lesson's own
pro-tier request is recorded with the 400 the API gives it.
"""

from __future__ import annotations

import json
from typing import Any

from labkit.course.ex07 import (
    BILLING_MODEL,
    LESSON_PRO_REQUEST,
    MARKETING,
    STAGE_MODELS,
    STATUS,
    SUMMARY,
    TIER_LIMITS,
    TOPIC,
    SEOFields,
    stage_messages,
)

# --------------------------------------------------------------------------- billing
MARKETING_REPLY = (
    "Subject: Meet your new planning assistant\n\n"
    "Hi there,\n\n"
    "Planning the week shouldn't take half of Monday. Planwise's new AI task planner reads your open tasks, deadlines "
    "and each teammate's workload, then proposes a realistic plan for the week, in seconds.\n\n"
    "- Suggested priorities based on due dates and dependencies\n"
    "- Warnings when someone is overbooked\n"
    "- One click to accept, tweak or reshuffle\n\n"
    "It's already switched on in your workspace: open any project and click **Plan my week**.\n\n"
    "Happy planning,\nThe Planwise team"
)
SUMMARY_REPLY = (
    "- The mobile release slips one week because of an Android 15 push-notification bug; Luis will pair with QA on the fix.\n"
    "- Priya's onboarding checklist redesign is done; a usability test is scheduled for Thursday.\n"
    "- Decision needed by Friday on dropping the legacy CSV importer (raised by Dana)."
)

# --------------------------------------------------------------------------- tiers
STATUS_REPLIES = {
    "free": "The new website design has been approved and development is about 60% complete. We remain on track to launch on 1 December.",
    "pro": "Good news: the website design is approved and development is now about 60% complete. "
           "We're on schedule for the 1 December launch and will share a staging link for review as soon as it's ready.",
    "enterprise": "The redesigned website's design has been formally approved, and development is roughly 60% complete, "
                  "with the remaining work focused on content pages and integrations. We remain on track for the "
                  "1 December launch and will confirm the final QA and go-live schedule with your team next week.",
}
MAX_TOKENS_ERROR = {
    "status": 400,
    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    "type": "invalid_request_error",
    "param": "max_tokens",
    "code": "unsupported_parameter",
}

# --------------------------------------------------------------------------- pipeline
RESEARCH = (
    "1. Keep it short: 30 minutes is enough for teams of 3 to 8 people; longer meetings drift into problem-solving.\n"
    "2. Same time every week (Monday morning is common) so planning becomes a habit, not an event.\n"
    "3. Prepare asynchronously: everyone updates their tasks before the meeting, so time is spent deciding, not reporting.\n"
    "4. Start from goals, not task lists: agree on the two or three outcomes that matter this week.\n"
    "5. Check capacity honestly: holidays, support duty and meetings reduce what each person can take on.\n"
    "6. Make dependencies and blockers explicit, with an owner for each.\n"
    "7. End with a written summary: priorities, owners and what was deliberately postponed.\n"
    "8. Review last week's plan in two minutes to learn how accurate your estimates are."
)
OUTLINE = (
    "# Weekly planning meetings that small teams actually like\n\n"
    "1. Introduction: why weekly planning beats ad-hoc coordination\n"
    "2. Format: 30 minutes, same slot each week, a fixed agenda\n"
    "3. Before the meeting: asynchronous updates\n"
    "4. During the meeting\n"
    "   - Look back for two minutes: what did we finish?\n"
    "   - Agree on this week's two or three outcomes\n"
    "   - Check capacity and assign owners\n"
    "   - Surface dependencies and blockers\n"
    "5. After the meeting: a written summary everyone can find\n"
    "6. Conclusion: keep it light, keep it regular"
)
ARTICLE = (
    "# Weekly planning meetings that small teams actually like\n\n"
    "Small teams move fast, which is exactly why they lose track of priorities. A short weekly planning meeting "
    "keeps everyone pulling in the same direction without adding bureaucracy.\n\n"
    "## Keep the format fixed\n\n"
    "Book 30 minutes in the same slot every week; Monday morning works for most teams. A fixed time turns planning "
    "into a habit, and a fixed agenda stops the meeting from drifting into problem-solving.\n\n"
    "## Do the reporting before you meet\n\n"
    "Ask everyone to update their tasks beforehand. When status is already visible, the meeting can be spent on "
    "decisions rather than on round-the-table updates.\n\n"
    "## A four-step agenda\n\n"
    "1. **Look back (2 minutes).** What did we finish, and what slipped? Over time this shows how good your estimates are.\n"
    "2. **Pick the outcomes.** Agree on the two or three results that matter most this week.\n"
    "3. **Check capacity.** Account for holidays, support duty and other meetings, then assign an owner to each outcome.\n"
    "4. **Surface blockers.** Name dependencies out loud and give each one an owner.\n\n"
    "## Write it down\n\n"
    "Finish with a short written summary: priorities, owners, and what you deliberately postponed. Post it where "
    "everyone works, so the plan is still visible on Thursday.\n\n"
    "## Keep it light\n\n"
    "The goal is not a perfect plan but a shared one. Thirty focused minutes a week is a small price for a team that "
    "knows what matters and who is doing it."
)
SEO = {
    "title": "Weekly Planning Meetings for Small Teams: A 30-Minute Guide",
    "meta_description": "Run a 30-minute weekly planning meeting your small team will like: async updates, a four-step agenda, clear owners and a written summary.",
    "keywords": ["weekly planning meeting", "small team planning", "meeting agenda", "team priorities", "capacity planning", "project management"],
}


def build(a: Any) -> None:
    for messages, reply, what in ((MARKETING, MARKETING_REPLY, "marketing email"), (SUMMARY, SUMMARY_REPLY, "meeting summary")):
        a.call(lambda c, m=messages: c.chat.completions.create(model=BILLING_MODEL, messages=m), reply,
               label=f"tenant request: {what}")
        a.call(lambda c, m=messages: c.responses.create(model=BILLING_MODEL, input=m), reply,
               label=f"tenant request on the Responses API: {what}")
    for tier, limits in TIER_LIMITS.items():
        a.call(
            lambda c, limits=limits: c.chat.completions.create(
                model=limits["model"], messages=STATUS, max_completion_tokens=limits["max_completion_tokens"],
                reasoning_effort=limits["reasoning_effort"]),
            STATUS_REPLIES[tier], label=f"status update, {tier} tier",
        )
        a.call(
            lambda c, limits=limits: c.responses.create(
                model=limits["model"], input=STATUS, max_output_tokens=limits["max_completion_tokens"],
                reasoning={"effort": limits["reasoning_effort"]}),
            STATUS_REPLIES[tier], label=f"status update on the Responses API, {tier} tier",
        )
    a.call(lambda c: c.chat.completions.create(**LESSON_PRO_REQUEST),
           error=MAX_TOKENS_ERROR, label="the lesson's pro-tier request: max_tokens on its flagship (400)")
    text = ""
    for stage, reply in (("research", RESEARCH), ("outline", OUTLINE), ("write", ARTICLE)):
        msgs = stage_messages(stage, TOPIC, text)
        a.call(lambda c, m=STAGE_MODELS[stage], msgs=msgs: c.chat.completions.create(model=m, messages=msgs),
               reply, label=f"pipeline stage: {stage}")
        a.call(lambda c, m=STAGE_MODELS[stage], msgs=msgs: c.responses.create(model=m, input=msgs),
               reply, label=f"pipeline stage on the Responses API: {stage}")
        text = reply
    seo = stage_messages("seo", TOPIC, ARTICLE)
    a.call(lambda c: c.chat.completions.parse(model=STAGE_MODELS["seo"], messages=seo, response_format=SEOFields),
           json.dumps(SEO), label="pipeline stage: seo (structured output)")
    a.call(lambda c: c.responses.parse(model=STAGE_MODELS["seo"], input=seo, text_format=SEOFields),
           json.dumps(SEO), label="pipeline stage on the Responses API: seo (structured output)")
