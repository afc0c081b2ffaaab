"""Exercise 02 and notebook 02: the three templates' requests on the December 2026 line-up, in both forms and through both APIs."""

from __future__ import annotations

import json

from labkit.course.ex02 import (
    AD_BRIEF,
    ANALYSIS_HIGH,
    ANALYSIS_NO_REASONING,
    ANALYSIS_REASONING,
    ANALYSIS_TEXT_FORMAT,
    HEADLINE_MESSAGES,
    HEADLINE_REASONING,
    HEADLINE_SAMPLING,
    HEADLINE_SYSTEM,
    SUPPORT_EMAIL,
    SUPPORT_MESSAGES,
    SUPPORT_REASONING,
    SUPPORT_SAMPLING,
    SUPPORT_SYSTEM,
    analysis_messages,
    load_financials,
)

# --------------------------------------------------------------------------- template 1
SUPPORT_REPLY = (
    "Hi there,\n\n"
    "I'm sorry to see you were charged twice for your Team plan this month, and I understand how "
    "frustrating an unexpected charge is.\n\n"
    "I've escalated this to our billing team with the details of both $129 charges. They will review "
    "your account and email you within one business day with what they find and how any duplicate "
    "charge will be corrected.\n\n"
    "In the meantime, our help center explains how billing corrections work: "
    "https://help.trellis.example/billing/duplicate-charges\n\n"
    "Thank you for your patience,\nTrellis Support"
)
SUPPORT_REPLY_REASONING = (
    "Hello,\n\n"
    "Thank you for letting us know, and I apologize for the double charge on your Team plan.\n\n"
    "I've passed this to our billing team, who will check both $129 charges and reply to you within "
    "one business day with the outcome.\n\n"
    "You can read how we handle billing corrections at https://help.trellis.example/billing.\n\n"
    "Best regards,\nTrellis Support"
)

# --------------------------------------------------------------------------- template 2
HEADLINES = (
    "1. Your Sales Managers Weren't Hired to Type. Stop Making Them.\n"
    "2. Every Hour of CRM Data Entry Is an Hour Not Selling\n"
    "3. Manual Data Entry: The Silent Killer of Your Pipeline\n"
    "4. Still Copy-Pasting Deals Into the CRM? Your Quota Noticed.\n"
    "5. Fire the Spreadsheet. Keep Your Best Sales Reps."
)
HEADLINES_REASONING = (
    "1. Sales Managers: Your Team Sells Less Than It Types\n"
    "2. Stop Paying Closers to Do Data Entry\n"
    "3. The CRM Should Update Itself. Now It Does.\n"
    "4. 500 Employees, Zero Manual Data Entry\n"
    "5. Quota Is Won on Calls, Not in Spreadsheets"
)

# --------------------------------------------------------------------------- template 3


def _money(x: float) -> str:
    return f"${x:,.0f}"


def analysis(csv_text: str, *, variant: str = "reasoning") -> str:
    """The correct analysis of the data set as the reply's JSON, computed from the CSV."""
    import csv
    import io

    revenue: dict[str, list[int]] = {}
    expenses: dict[str, list[int]] = {}
    for row in csv.DictReader(io.StringIO(csv_text)):
        (revenue if row["type"] == "revenue" else expenses).setdefault(row["category"], []).append(int(row["amount_usd"]))
    total_rev = sum(map(sum, revenue.values()))
    total_exp = sum(map(sum, expenses.values()))
    net = total_rev - total_exp
    margin = round(100 * net / total_rev, 2)
    ranked = sorted(((k, sum(v)) for k, v in expenses.items()), key=lambda kv: kv[1], reverse=True)

    def line(name: str, vals: list[int]) -> str:
        return f"{name} {' + '.join(f'{v:,}' for v in vals)} = {sum(vals):,}"

    steps = [
        "Step 1: Revenue by line over July-September: " + "; ".join(line(k, v) for k, v in revenue.items()) + ".",
        f"Step 2: Total revenue = {' + '.join(f'{sum(v):,}' for v in revenue.values())} = {_money(total_rev)}.",
        "Step 3: Expenses by category over the quarter: " + "; ".join(line(k, v) for k, v in expenses.items()) + ".",
        f"Step 4: Total expenses = {' + '.join(f'{sum(v):,}' for v in expenses.values())} = {_money(total_exp)}.",
        f"Step 5: Net profit = total revenue - total expenses = {_money(total_rev)} - {_money(total_exp)} = {_money(net)}.",
        f"Step 6: Net profit margin = net profit / total revenue x 100 = {net:,} / {total_rev:,} x 100 = {margin:.2f}%.",
        "Step 7: Ranking the expense categories by quarterly total: "
        + ", ".join(f"{k} ({_money(v)})" for k, v in ranked) + "; the top three are the first three.",
    ]
    if variant == "no-reasoning":  # effort "none" at temperature 0 words its steps a little differently
        steps = [s.replace("Step ", "").replace(":", ".", 1) for s in steps]
    reply = {
        "steps": steps,
        "total_revenue": total_rev,
        "total_expenses": total_exp,
        "net_profit": net,
        "net_profit_margin_pct": margin,
        "top_expense_categories": [{"category": k, "amount": v} for k, v in ranked[:3]],
    }
    return json.dumps(reply, ensure_ascii=False)


def _settings(request: dict) -> str:
    shown = {k: v for k, v in request.items() if k not in ("model", "response_format")}
    return ", ".join(f"{k} {v}" for k, v in shown.items())


def build(a) -> None:
    csv_text = load_financials()
    good = analysis(csv_text)
    t3_messages = analysis_messages(csv_text)
    t1, t2, t3 = SUPPORT_SAMPLING, HEADLINE_SAMPLING, ANALYSIS_REASONING

    # the course's form of each template (the reference solution sends these)
    a.call(lambda c: c.chat.completions.create(**t1, messages=SUPPORT_MESSAGES), SUPPORT_REPLY,
           label=f"template 1: support reply ({t1['model']}, {_settings(t1)})")
    a.call(lambda c: c.chat.completions.create(**t2, messages=HEADLINE_MESSAGES), HEADLINES,
           label=f"template 2: five headlines ({t2['model']}, {_settings(t2)})")
    a.call(lambda c: c.chat.completions.create(**t3, messages=t3_messages), good,
           label=f"template 3: structured analysis ({t3['model']}, {_settings(t3)})")

    # the other correct form of templates 1 and 2, and template 3 at another effort (notebook 02 compares them)
    for req, messages, reply, what in (
        (SUPPORT_REASONING, SUPPORT_MESSAGES, SUPPORT_REPLY_REASONING, "template 1, reasoning form"),
        (HEADLINE_REASONING, HEADLINE_MESSAGES, HEADLINES_REASONING, "template 2, reasoning form"),
        (ANALYSIS_HIGH, t3_messages, good, "template 3 at high effort"),
        (ANALYSIS_NO_REASONING, t3_messages, analysis(csv_text, variant="no-reasoning"),
         "template 3 at effort none and temperature 0 (no reasoning: for comparison)"),
    ):
        a.call(lambda c, req=req, messages=messages: c.chat.completions.create(**req, messages=messages), reply,
               label=f"{what} ({req['model']}, {_settings(req)})")

    # the same three tasks through the Responses API (instructions + input, reasoning.effort, max_output_tokens)
    a.call(lambda c: c.responses.create(model=t1["model"], instructions=SUPPORT_SYSTEM, input=SUPPORT_EMAIL,
                                        reasoning={"effort": t1["reasoning_effort"]}, temperature=t1["temperature"],
                                        max_output_tokens=t1["max_completion_tokens"]),
           SUPPORT_REPLY, label=f"template 1 through the Responses API ({t1['model']})")
    a.call(lambda c: c.responses.create(model=t2["model"], instructions=HEADLINE_SYSTEM, input=AD_BRIEF,
                                        reasoning={"effort": t2["reasoning_effort"]}, temperature=t2["temperature"],
                                        top_p=t2["top_p"], max_output_tokens=t2["max_completion_tokens"]),
           HEADLINES, label=f"template 2 through the Responses API ({t2['model']})")
    a.call(lambda c: c.responses.create(model=t3["model"], input=t3_messages, reasoning={"effort": t3["reasoning_effort"]},
                                        max_output_tokens=t3["max_completion_tokens"], text={"format": ANALYSIS_TEXT_FORMAT}),
           good, label=f"template 3 through the Responses API ({t3['model']}, structured output)")
