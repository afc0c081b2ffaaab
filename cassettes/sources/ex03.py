"""Exercise 03 and notebook 03: the production client's successful answers (authored), plus the lesson's rejected request."""

from __future__ import annotations

from labkit.course.ex03 import (
    LESSON_PARAMS,
    MODEL,
    PLAYBOOK_CACHED_TOKENS,
    PROBE_MESSAGES,
    SUPPORT_QUESTIONS,
    support_messages,
)

SUPPORT_REPLIES = [
    "You can get the full plan today by exporting to CSV instead of PDF; PDF export currently stops at row 500.\n"
    "1. Open the Gantt view and choose Export, then CSV.\n"
    "2. Open the file in your spreadsheet tool and print or share it from there.\n"
    "3. If you need a PDF, filter the view (for example by phase) so each export has fewer than 500 rows, "
    "and export each part.\n"
    "If none of this works for your board pack, reply here and I will open a ticket with our team.",
    "I'm sorry you were charged twice; duplicate charges are always refunded in full.\n"
    "1. I have passed invoice INV-20931 to our billing team.\n"
    "2. Billing will confirm the refund by email within three business days.\n"
    "You don't need to do anything else for now. If the email has not arrived after three business days, "
    "reply to this thread. Escalated to billing [duplicate-charge].",
    "Yes, you can downgrade, but the change takes effect at the end of your current annual period, not mid-plan.\n"
    "1. Until then you keep every Business feature, including SAML single sign-on.\n"
    "2. After the switch, SSO is no longer available on Team, so users sign in with email and password; "
    "plan that change with your identity provider admin.\n"
    "3. Projects over Team's limits become read-only, never deleted.\n"
    "If you need SSO to continue, stay on Business or reply and I can put you in touch with a human agent.",
]


def build(a) -> None:
    a.call(
        lambda c: c.chat.completions.create(model=MODEL, messages=PROBE_MESSAGES),
        "The customer likes the new timeline view but is frustrated by daily forced logouts that wipe their saved "
        "filters, and by a three-day wait for support.",
        label="the lesson's usage example, answered (retry checks replay it after their faults)",
    )
    for i, (question, reply) in enumerate(zip(SUPPORT_QUESTIONS, SUPPORT_REPLIES)):
        a.call(
            lambda c, q=question: c.chat.completions.create(model=MODEL, messages=support_messages(q)),
            reply,
            # The playbook is the same long prefix every time: after the first call the API
            # serves most of it from the prompt cache.
            cached_tokens=0 if i == 0 else PLAYBOOK_CACHED_TOKENS,
            label=f"support question {i + 1} with the shared playbook prefix",
        )
    # The lesson's own call: a GPT-5 model with temperature and max_tokens, which the real API rejects.
    a.call(
        lambda c: c.chat.completions.create(messages=PROBE_MESSAGES, **LESSON_PARAMS),
        error={
            "status": 400,
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        },
        label="the lesson's request ({model}, temperature {temperature}, max_tokens {max_tokens}): rejected with 400".format(**LESSON_PARAMS),
    )
