"""Notebook 06: a replayed day of Planwise traffic (support answers, ticket summaries, marketing lines).

The requests are labkit.course.ex06's (DAY_QUESTIONS, DAY_TICKETS); the answers are written here.
"""

from __future__ import annotations

from typing import Any

from ex06 import create

from labkit.course.ex06 import DAY_QUESTIONS, DAY_TICKETS, PREMIUM, TICKET_PARAMS, ask, ticket_messages

#: The answer to each of DAY_QUESTIONS, in the same order.
FAQ_REPLIES = (
    # DAY_QUESTIONS[0]: invite a teammate
    (
        "Go to **Settings → Members** and click **Invite**. Enter one or more email addresses, choose a role "
        "(Member, Admin or Guest) and click **Send invites**. Invitations are valid for 7 days; you can resend or "
        "revoke them from the same page. On the Free plan a workspace can have up to 5 members."
    ),
    # DAY_QUESTIONS[1]: recover a deleted task
    (
        "Yes, for 30 days. Open **Trash** in the left sidebar, find the task and click **Restore**: it returns to its "
        "original project with its comments and attachments. Admins can also restore tasks deleted by other members. "
        "After 30 days, deleted tasks are removed permanently."
    ),
    # DAY_QUESTIONS[2]: recurring tasks
    (
        "Open the task, click the due date and choose **Repeat**. Pick daily, weekly, monthly or a custom schedule "
        "(for example every second Tuesday). When you complete the task, Planwise creates the next one automatically "
        "with the same assignee, checklist and description."
    ),
    # DAY_QUESTIONS[3]: Slack
    (
        "Yes. Go to **Settings → Integrations → Slack** and click **Connect**. You can then get task notifications in a "
        "channel, create tasks from any Slack message with the **Create Planwise task** shortcut, and receive your daily "
        "digest as a direct message. The integration is available on all plans."
    ),
    # DAY_QUESTIONS[4]: notification settings
    (
        "Click your avatar, then **Notifications**. You can choose, per event (assignments, comments, due dates, "
        "mentions), whether to be notified by email, in the app, on mobile, or not at all, and set quiet hours. "
        "Project-level settings let you mute a busy project without changing everything else."
    ),
    # DAY_QUESTIONS[5]: encryption
    (
        "Yes. Data is encrypted in transit with TLS 1.2 or later and at rest with AES-256. Backups are encrypted too. "
        "Planwise is SOC 2 Type II audited, and Enterprise customers can request our latest report and sign a DPA "
        "from **Settings → Security**."
    ),
    # DAY_QUESTIONS[6]: cancel the subscription
    (
        "Workspace owners can cancel under **Settings → Billing → Cancel subscription**. Your paid features stay "
        "active until the end of the current billing period, then the workspace moves to the Free plan; no data is "
        "deleted. If you change your mind, you can resubscribe at any time from the same page."
    ),
    # DAY_QUESTIONS[7]: offline use
    (
        "Partly. The desktop and mobile apps keep your recent projects available offline: you can view tasks, tick them "
        "off and add comments, and changes sync when you reconnect. Creating new projects and changing workspace "
        "settings need a connection. The web app requires an internet connection."
    ),
    # DAY_QUESTIONS[8]: custom fields
    (
        "Open the project, click **Customize → Fields → Add field** and choose a type: text, number, date, dropdown, "
        "person or checkbox. Name the field, set the options if it's a dropdown, and click **Save**. Custom fields "
        "appear in list and board views and can be used in filters and exports."
    ),
)

#: The summary of each of DAY_TICKETS, in the same order.
TICKET_SUMMARIES = (
    # DAY_TICKETS[0]: Ticket #5102
    "Customer in Sydney (UTC+11) reports all Gantt tasks displaying one day late since this morning, likely a time-zone bug.",
    # DAY_TICKETS[1]: Ticket #5107
    "Customer was double-charged for November after a mid-cycle upgrade from Pro to Business and needs a refund.",
    # DAY_TICKETS[2]: Ticket #5111
    "Okta SSO fails with an 'invalid audience' error for newly provisioned users only; existing users can sign in.",
    # DAY_TICKETS[3]: Ticket #5118
    "CSV export truncates at 10,000 rows for a project with 14,200 tasks.",
    # DAY_TICKETS[4]: Ticket #5120
    "Android app crashes when opening attachments over 50 MB.",
    # DAY_TICKETS[5]: Ticket #5124
    "Customer requests a reissued invoice that includes their VAT number.",
)


def build(a: Any) -> None:
    ticket = {k: v for k, v in TICKET_PARAMS.items() if k not in ("model", "reasoning_effort", "max_completion_tokens")}
    for question, reply in zip(DAY_QUESTIONS, FAQ_REPLIES, strict=True):
        a.call(create(PREMIUM, ask(question)), reply, label="support answer (a day of traffic)")
    for text, summary in zip(DAY_TICKETS, TICKET_SUMMARIES, strict=True):
        a.call(create(TICKET_PARAMS["model"], ticket_messages(text), effort=TICKET_PARAMS["reasoning_effort"],
                      max_out=TICKET_PARAMS["max_completion_tokens"], **ticket),
               summary, label="ticket summary (a day of traffic)")
