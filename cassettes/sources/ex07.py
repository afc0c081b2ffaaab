"""Exercise 07 and notebook 07: tenant billing, tier-gated requests and the four-stage content pipeline.

The requests are labkit.course.ex07's; the answers (and their reasoning summaries) are written here.
"""

from __future__ import annotations

import json

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
MARKETING_REASONING = (
    "Existing customers, so no need to explain Planwise itself. Lead with the pain (weekly planning time), "
    "list three concrete benefits, end with where to find the feature. Keep it short and friendly."
)
SUMMARY_REPLY = (
    "- The mobile release slips one week because of an Android 15 push-notification bug; Luis will pair with QA on the fix.\n"
    "- Priya's onboarding checklist redesign is done; a usability test is scheduled for Thursday.\n"
    "- Decision needed by Friday on dropping the legacy CSV importer (raised by Dana)."
)
SUMMARY_REASONING = "Three points: release delay with owner, onboarding redesign status, pending decision with deadline."

# --------------------------------------------------------------------------- tiers
STATUS_REPLIES = {
    "free": "The new website design has been approved and development is about 60% complete. We remain on track to launch on 1 December.",
    "pro": "Good news: the website design is approved and development is now about 60% complete. "
           "We're on schedule for the 1 December launch and will share a staging link for review as soon as it's ready.",
    "enterprise": "The redesigned website's design has been formally approved, and development is roughly 60% complete, "
                  "with the remaining work focused on content pages and integrations. We remain on track for the "
                  "1 December launch and will confirm the final QA and go-live schedule with your team next week.",
}
STATUS_REASONING = {
    "free": "",
    "pro": "Two sentences: progress facts, then the launch date with a next step.",
    "enterprise": "Client-facing, two sentences. First: approval and progress with what remains. Second: launch date "
                  "unchanged plus the next coordination step so the client knows what to expect.",
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
RESEARCH_REASONING = "Small teams, practical angle: format, preparation, prioritisation, capacity, follow-up, learning loop."
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
OUTLINE_REASONING = "Follow the meeting chronologically: before, during, after. Put the agenda in the middle section."
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
ARTICLE_REASONING = (
    "About 300 words, Markdown headings mirroring the outline. Concrete advice, numbers from the research (30 minutes, "
    "two or three outcomes), a numbered agenda, short closing."
)
SEO = {
    "title": "Weekly Planning Meetings for Small Teams: A 30-Minute Guide",
    "meta_description": "Run a 30-minute weekly planning meeting your small team will like: async updates, a four-step agenda, clear owners and a written summary.",
    "keywords": ["weekly planning meeting", "small team planning", "meeting agenda", "team priorities", "capacity planning", "project management"],
}


def build(a) -> None:
    a.call(lambda c: c.chat.completions.create(model=BILLING_MODEL, messages=MARKETING), MARKETING_REPLY,
           reasoning=MARKETING_REASONING, label="tenant request: marketing email")
    a.call(lambda c: c.chat.completions.create(model=BILLING_MODEL, messages=SUMMARY), SUMMARY_REPLY,
           reasoning=SUMMARY_REASONING, label="tenant request: meeting summary")
    for tier, limits in TIER_LIMITS.items():
        a.call(
            lambda c, limits=limits: c.chat.completions.create(
                model=limits["model"], messages=STATUS, max_completion_tokens=limits["max_completion_tokens"],
                reasoning_effort=limits["reasoning_effort"]),
            STATUS_REPLIES[tier], reasoning=STATUS_REASONING[tier], label=f"status update, {tier} tier",
        )
    a.call(lambda c: c.chat.completions.create(**LESSON_PRO_REQUEST),
           error=MAX_TOKENS_ERROR, label="the lesson's pro-tier request: max_tokens on gpt-5 (400)")
    text = ""
    replies = {"research": (RESEARCH, RESEARCH_REASONING), "outline": (OUTLINE, OUTLINE_REASONING),
               "write": (ARTICLE, ARTICLE_REASONING)}
    for stage, (reply, reasoning) in replies.items():
        msgs = stage_messages(stage, TOPIC, text)
        a.call(lambda c, m=STAGE_MODELS[stage], msgs=msgs: c.chat.completions.create(model=m, messages=msgs),
               reply, reasoning=reasoning, label=f"pipeline stage: {stage}")
        text = reply
    a.call(lambda c: c.chat.completions.parse(model=STAGE_MODELS["seo"], messages=stage_messages("seo", TOPIC, ARTICLE),
                                              response_format=SEOFields),
           json.dumps(SEO), reasoning="Title under 60 characters with the main keyword first; description under 160.",
           label="pipeline stage: seo (structured output)")
