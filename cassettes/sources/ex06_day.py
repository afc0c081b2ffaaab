"""Notebook 06: a replayed day of Planwise traffic (support answers, ticket summaries, marketing lines)."""

from __future__ import annotations

from ex06 import CHEAP, PREMIUM, ask, create

#: More support questions (the first three of the day's pool live in ex06: reset, export, billing).
FAQ = {
    "How do I invite a teammate to my workspace?": (
        "Go to **Settings → Members** and click **Invite**. Enter one or more email addresses, choose a role "
        "(Member, Admin or Guest) and click **Send invites**. Invitations are valid for 7 days; you can resend or "
        "revoke them from the same page. On the Free plan a workspace can have up to 5 members."
    ),
    "Can I recover a deleted task?": (
        "Yes, for 30 days. Open **Trash** in the left sidebar, find the task and click **Restore**: it returns to its "
        "original project with its comments and attachments. Admins can also restore tasks deleted by other members. "
        "After 30 days, deleted tasks are removed permanently."
    ),
    "How do I set up recurring tasks?": (
        "Open the task, click the due date and choose **Repeat**. Pick daily, weekly, monthly or a custom schedule "
        "(for example every second Tuesday). When you complete the task, Planwise creates the next one automatically "
        "with the same assignee, checklist and description."
    ),
    "Does Planwise integrate with Slack?": (
        "Yes. Go to **Settings → Integrations → Slack** and click **Connect**. You can then get task notifications in a "
        "channel, create tasks from any Slack message with the **Create Planwise task** shortcut, and receive your daily "
        "digest as a direct message. The integration is available on all plans."
    ),
    "How do I change my notification settings?": (
        "Click your avatar, then **Notifications**. You can choose, per event (assignments, comments, due dates, "
        "mentions), whether to be notified by email, in the app, on mobile, or not at all, and set quiet hours. "
        "Project-level settings let you mute a busy project without changing everything else."
    ),
    "Is my data encrypted?": (
        "Yes. Data is encrypted in transit with TLS 1.2 or later and at rest with AES-256. Backups are encrypted too. "
        "Planwise is SOC 2 Type II audited, and Enterprise customers can request our latest report and sign a DPA "
        "from **Settings → Security**."
    ),
    "How do I cancel my subscription?": (
        "Workspace owners can cancel under **Settings → Billing → Cancel subscription**. Your paid features stay "
        "active until the end of the current billing period, then the workspace moves to the Free plan; no data is "
        "deleted. If you change your mind, you can resubscribe at any time from the same page."
    ),
    "Can I use Planwise offline?": (
        "Partly. The desktop and mobile apps keep your recent projects available offline: you can view tasks, tick them "
        "off and add comments, and changes sync when you reconnect. Creating new projects and changing workspace "
        "settings need a connection. The web app requires an internet connection."
    ),
    "How do I add a custom field to a project?": (
        "Open the project, click **Customize → Fields → Add field** and choose a type: text, number, date, dropdown, "
        "person or checkbox. Name the field, set the options if it's a dropdown, and click **Save**. Custom fields "
        "appear in list and board views and can be used in filters and exports."
    ),
}

TICKET_SYSTEM = "Summarize the support ticket in one sentence for the agent queue."
TICKETS = {
    "Ticket #5102: Since this morning our Gantt chart shows every task shifted by one day. We're in Sydney (UTC+11).": (
        "Customer in Sydney (UTC+11) reports all Gantt tasks displaying one day late since this morning, likely a time-zone bug."
    ),
    "Ticket #5107: We were charged twice for November after upgrading from Pro to Business mid-cycle.": (
        "Customer was double-charged for November after a mid-cycle upgrade from Pro to Business and needs a refund."
    ),
    "Ticket #5111: SSO login with Okta fails with 'invalid audience' for new users only; existing users are fine.": (
        "Okta SSO fails with an 'invalid audience' error for newly provisioned users only; existing users can sign in."
    ),
    "Ticket #5118: CSV export stops at 10,000 rows; our project has 14,200 tasks.": (
        "CSV export truncates at 10,000 rows for a project with 14,200 tasks."
    ),
    "Ticket #5120: Mobile app crashes when opening attachments larger than 50 MB on Android.": (
        "Android app crashes when opening attachments over 50 MB."
    ),
    "Ticket #5124: Can we get an invoice with our VAT number added? We need it for our accountant.": (
        "Customer requests a reissued invoice that includes their VAT number."
    ),
}
TICKET_TEMPERATURE = 0.2
TICKET_MAX_OUT = 120


def ticket_messages(ticket: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": TICKET_SYSTEM}, {"role": "user", "content": ticket}]


def build(a) -> None:
    for question, reply in FAQ.items():
        a.call(create(PREMIUM, ask(question)), reply, label="support answer (a day of traffic)")
    for ticket, summary in TICKETS.items():
        a.call(create(CHEAP, ticket_messages(ticket), temperature=TICKET_TEMPERATURE, max_out=TICKET_MAX_OUT),
               summary, label="ticket summary (a day of traffic)")
