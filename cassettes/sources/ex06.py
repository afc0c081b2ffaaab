"""Exercise 06 and notebook 06: the enterprise client's requests (support answers, fallbacks, budget probe).

The requests are labkit.course.ex06's; the answers are written here.
"""

from __future__ import annotations

from labkit.course.ex06 import (
    BILLING,
    BUDGET_MAX_OUT,
    BUDGET_PROBE,
    CASCADE,
    CHEAP,
    EXPORT,
    MAX_COMPLETION_TOKENS,
    PREMIUM,
    RESET,
    TAGLINE,
    TEMPERATURE,
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
RESET_REPLY_4O = (
    "You can reset it in a minute:\n\n"
    "1. On the sign-in page, click **Forgot password?**\n"
    "2. Enter your account email and request the reset link.\n"
    "3. Follow the link in the email within 30 minutes and set a new password (12+ characters).\n\n"
    "Didn't get the email? Check your spam folder. If your workspace uses single sign-on, "
    "your password is managed by your company's identity provider, so contact your IT admin."
)
RESET_REPLY_MINI = (
    "Click **Forgot password?** on the sign-in page, enter your account email, and open the reset link we send you "
    "(valid for 30 minutes). Pick a new password with at least 12 characters. If you use SSO, reset it through "
    "your company's identity provider instead."
)
RESET_REPLY_COOL = (
    "1. On the sign-in page, click **Forgot password?**\n"
    "2. Enter your account email and click **Send reset link**.\n"
    "3. Open the link in the email within 30 minutes and choose a new password (at least 12 characters).\n\n"
    "Workspaces that use SSO manage passwords through their identity provider; contact your admin in that case."
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


def create(model: str, messages: list[dict[str, str]], temperature: float = TEMPERATURE, max_out: int = MAX_COMPLETION_TOKENS):
    """The request exactly as EnterpriseGPTClient.complete() sends it."""
    return lambda c: c.chat.completions.create(
        model=model, messages=messages, temperature=temperature, max_completion_tokens=max_out
    )


def build(a) -> None:
    a.call(create(PREMIUM, RESET), RESET_REPLY, label="support answer, premium model")
    a.call(create(SECOND, RESET), RESET_REPLY_4O, label="the same question answered by the second model of the cascade")
    a.call(create(CHEAP, RESET), RESET_REPLY_MINI, label="the same question on the cheaper model (budget fallback)")
    a.call(create(PREMIUM, RESET, temperature=0.2), RESET_REPLY_COOL, label="the same question at temperature 0.2 (a different cache entry)")
    a.call(create(PREMIUM, EXPORT), EXPORT_REPLY, label="support answer: export")
    a.call(create(PREMIUM, BILLING), BILLING_REPLY, label="support answer: billing")
    for i, line in enumerate(TAGLINES):
        a.call(create(PREMIUM, TAGLINE, temperature=1.0), line, label=f"tagline at temperature 1.0, authored variation {i + 1}")
    a.call(create(PREMIUM, BUDGET_PROBE, max_out=BUDGET_MAX_OUT), BUDGET_REPLY, label="short summary used by the budget check")
    a.call(create(SECOND, BUDGET_PROBE, max_out=BUDGET_MAX_OUT), BUDGET_REPLY, label="short summary, second model")
    a.call(create(CHEAP, BUDGET_PROBE, max_out=BUDGET_MAX_OUT), BUDGET_REPLY, label="short summary, cheaper model")
