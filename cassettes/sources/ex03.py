"""Exercise 03 and notebook 03: the production client's answers through either API (authored), plus the lesson's rejected request."""

from __future__ import annotations

from labkit.course.ex03 import (
    FILTERED_MESSAGES,
    LESSON_PARAMS,
    MODEL,
    PROBE_MESSAGES,
    SUPPORT_QUESTIONS,
    support_messages,
)

PROBE_REPLY = (
    "The customer likes the new timeline view but is frustrated by daily forced logouts that wipe their saved "
    "filters, and by a three-day wait for support."
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
    # The same answers through both APIs: the client's contract does not depend on the API it calls.
    apis = {
        "Chat Completions": lambda c, messages: c.chat.completions.create(model=MODEL, messages=messages),
        "Responses API": lambda c, messages: c.responses.create(model=MODEL, input=messages),
    }
    for api, send in apis.items():
        a.call(lambda c, s=send: s(c, PROBE_MESSAGES), PROBE_REPLY,
               label=f"the lesson's usage example, answered ({api}; retry checks replay it after their faults)")
        a.call(lambda c, s=send: s(c, FILTERED_MESSAGES), None, finish_reason="content_filter",
               label=f"an answer with no text: its output was filtered ({api}); the client must raise")
        for i, (question, reply) in enumerate(zip(SUPPORT_QUESTIONS, SUPPORT_REPLIES)):
            # The playbook is the same long prefix every time: the first call writes it to the prompt
            # cache (billed at 1.25x input on this model), the next ones read it at the cached price.
            a.call(lambda c, s=send, q=question: s(c, support_messages(q)), reply,
                   cache="write" if i == 0 else "hit",
                   label=f"support question {i + 1} with the shared playbook prefix ({api}; cache "
                         f"{'written' if i == 0 else 'read'})")
    # The lesson's own call: a GPT-5 reasoning model with temperature and max_tokens, which the API rejects.
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
