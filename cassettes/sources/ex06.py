"""Exercise 06 and notebook 06: the enterprise client's requests (support answers, fallbacks, budget probe).

The requests are labkit.course.ex06's; the answers are written here. Every task is recorded as
EnterpriseGPTClient.complete() sends it (Chat Completions, on each model that may answer it) and
once on the Responses API, so a client written on either API is answered (the checks' simulator
adapts a recording to the model and parameters actually sent). The lesson's own request is
recorded with the 400 the API gives it.
"""

from __future__ import annotations

from typing import Any

from labkit.course.ex06 import (
    BILLING,
    BUDGET_MAX_OUT,
    BUDGET_PROBE,
    CASCADE,
    CHEAP,
    EFFORT,
    EXPORT,
    LESSON_REQUEST,
    MAX_COMPLETION_TOKENS,
    PREMIUM,
    RESET,
    TAGLINE,
    TAGLINE_PARAMS,
)

#: The second model of the cascade, asked when PREMIUM is unavailable.
SECOND = CASCADE[1]

RESET_REPLY = (
    "To reset your password:\n\n"
    "1. Go to the Planwise sign-in page and click **Forgot password?**\n"
    "2. Enter the email address on your account and click **Send reset link**.\n"
    "3. Open the email (check spam if it doesn't arrive within a few minutes) and follow the link; it is valid for 30 minutes.\n"
    "4. Choose a new password of at least 12 characters.\n\n"
    "If your company signs in with SSO, reset your password with your identity provider instead, "
    "or ask your workspace admin for help."
)
RESET_REPLY_SECOND = (
    "You can reset it in a minute:\n\n"
    "1. On the sign-in page, click **Forgot password?**\n"
    "2. Enter your account email and request the reset link.\n"
    "3. Follow the link in the email within 30 minutes and set a new password (12+ characters).\n\n"
    "Didn't get the email? Check your spam folder. If your workspace uses single sign-on, "
    "your password is managed by your company's identity provider, so contact your IT admin."
)
RESET_REPLY_CHEAP = (
    "Click **Forgot password?** on the sign-in page, enter your account email, and open the reset link we send you "
    "(valid for 30 minutes). Pick a new password with at least 12 characters. If you use SSO, reset it through "
    "your company's identity provider instead."
)
EXPORT_REPLY = (
    "Open the project, click the **⋯** menu in the top-right corner and choose **Export → CSV**. "
    "Pick the fields you want (tasks, assignees, due dates, status, custom fields) and click **Export**. "
    "Large projects are prepared in the background and emailed to you as a download link. "
    "Exports include only the tasks you have permission to see."
)
BILLING_REPLY = (
    "Yes. Workspace owners can switch under **Settings → Billing → Change plan**: choose **Annual** and confirm. "
    "You'll get credit for the unused part of your current month, and annual billing saves about 17% "
    "compared with paying monthly. The change takes effect immediately and your next invoice shows the prorated amount."
)
TAGLINES = (
    "Planwise AI: your tasks, already in the right order.",
    "Stop planning your plan: Planwise AI sorts the work so your team can do it.",
)
BUDGET_REPLY = (
    "Customer reports the Gantt view freezes on projects with over 500 tasks, suggesting a rendering "
    "performance issue with large task lists that needs engineering investigation."
)


#: The API's answer to the lesson's request (it reports the first parameter it rejects).
LESSON_ERROR = {
    "status": 400,
    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    "type": "invalid_request_error",
    "param": "max_tokens",
    "code": "unsupported_parameter",
}


def create(model: str, messages: list[dict[str, str]], *, effort: str = EFFORT, max_out: int = MAX_COMPLETION_TOKENS,
           **params: Any) -> Any:
    """The request exactly as EnterpriseGPTClient.complete() sends it (Chat Completions)."""
    return lambda c: c.chat.completions.create(
        model=model, messages=messages, reasoning_effort=effort, max_completion_tokens=max_out, **params
    )


def respond(model: str, messages: list[dict[str, str]], *, effort: str = EFFORT, max_out: int = MAX_COMPLETION_TOKENS,
            **params: Any) -> Any:
    """The same request on the Responses API (a client written on it is answered too)."""
    return lambda c: c.responses.create(
        model=model, input=messages, reasoning={"effort": effort}, max_output_tokens=max_out, **params
    )


def build(a: Any) -> None:
    for model, reply in ((PREMIUM, RESET_REPLY), (SECOND, RESET_REPLY_SECOND), (CHEAP, RESET_REPLY_CHEAP)):
        a.call(create(model, RESET), reply, label=f"support answer: password reset ({model})")
    for model in CASCADE:
        a.call(create(model, EXPORT), EXPORT_REPLY, label=f"support answer: export ({model})")
        a.call(create(model, BILLING), BILLING_REPLY, label=f"support answer: billing ({model})")
        a.call(create(model, BUDGET_PROBE, max_out=BUDGET_MAX_OUT), BUDGET_REPLY, label=f"short summary for the budget checks ({model})")
    tagline = {k: v for k, v in TAGLINE_PARAMS.items() if k not in ("model", "reasoning_effort")}
    for i, line in enumerate(TAGLINES):
        a.call(create(CHEAP, TAGLINE, effort=TAGLINE_PARAMS["reasoning_effort"], **tagline), line,
               label=f"tagline at temperature {tagline['temperature']}, variation {i + 1}")
    for messages, reply in ((RESET, RESET_REPLY), (EXPORT, EXPORT_REPLY), (BILLING, BILLING_REPLY)):
        a.call(respond(PREMIUM, messages), reply, label="support answer on the Responses API")
    a.call(respond(PREMIUM, BUDGET_PROBE, max_out=BUDGET_MAX_OUT), BUDGET_REPLY, label="short summary on the Responses API")
    a.call(respond(CHEAP, TAGLINE, effort=TAGLINE_PARAMS["reasoning_effort"], **tagline), TAGLINES[0],
           label="tagline on the Responses API")
    a.call(lambda c: c.chat.completions.create(**LESSON_REQUEST), error=LESSON_ERROR,
           label="the lesson's request as written: its flagship with temperature and max_tokens (400)")
