"""Exercise 02 and notebook 02: the three templates' requests, as the reference solution sends them and in their other correct form."""

from __future__ import annotations

import json

from labkit.course.ex02 import (
    ANALYSIS_REASONING,
    ANALYSIS_SAMPLING,
    HEADLINE_MESSAGES,
    HEADLINE_REASONING,
    HEADLINE_SAMPLING,
    SUPPORT_MESSAGES,
    SUPPORT_REASONING,
    SUPPORT_SAMPLING,
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


def analysis(csv_text: str, *, variant: str = "reasoning") -> tuple[str, str]:
    """The correct analysis of the data set (reply JSON, hidden reasoning), computed from the CSV."""
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
    if variant == "sampling":  # the sampling form at temperature 0 words its steps a little differently
        steps = [s.replace("Step ", "").replace(":", ".", 1) for s in steps]
    reply = {
        "steps": steps,
        "total_revenue": total_rev,
        "total_expenses": total_exp,
        "net_profit": net,
        "net_profit_margin_pct": margin,
        "top_expense_categories": [{"category": k, "amount": v} for k, v in ranked[:3]],
    }
    reasoning = (
        "The user wants the Q3 2025 net profit margin and the top three expense categories. Sum each line across "
        "the three months, then check the sums a second time by adding month totals. "
        + " ".join(line(k, v) for k, v in {**revenue, **expenses}.items())
        + f" Revenue {total_rev}, expenses {total_exp}, net {net}, margin {net}/{total_rev} = {net / total_rev:.6f}. "
        "Cross-check by month: "
        + " ".join(
            f"month {i + 1}: revenue {sum(v[i] for v in revenue.values())}, expenses {sum(v[i] for v in expenses.values())}."
            for i in range(3)
        )
        + " The month sums agree with the line sums. Rank the categories and report with numbered steps in the schema."
    )
    return json.dumps(reply, ensure_ascii=False), reasoning


def build(a) -> None:
    csv_text = load_financials()
    good, reasoning = analysis(csv_text)
    sampled, _ = analysis(csv_text, variant="sampling")
    t3_messages = analysis_messages(csv_text)
    t1, t2, t3 = SUPPORT_SAMPLING, HEADLINE_SAMPLING, ANALYSIS_REASONING
    t1r, t2r, t3s = SUPPORT_REASONING, HEADLINE_REASONING, ANALYSIS_SAMPLING

    # the course's form of each template (the reference solution sends these; the checks replay them)
    a.call(lambda c: c.chat.completions.create(**t1, messages=SUPPORT_MESSAGES), SUPPORT_REPLY,
           label=f"template 1: support reply ({t1['model']}, temperature {t1['temperature']})")
    a.call(lambda c: c.chat.completions.create(**t2, messages=HEADLINE_MESSAGES), HEADLINES,
           label=f"template 2: five headlines ({t2['model']}, temperature {t2['temperature']}, top_p {t2['top_p']})")
    a.call(lambda c: c.chat.completions.create(**t3, messages=t3_messages), good, reasoning=reasoning,
           label=f"template 3: structured analysis ({t3['model']}, reasoning_effort {t3['reasoning_effort']})")

    # the other correct form of each template (notebook 02 shows them)
    a.call(lambda c: c.chat.completions.create(**t1r, messages=SUPPORT_MESSAGES), SUPPORT_REPLY_REASONING,
           reasoning="Billing duplicate, $129 x2. Over $100: escalate, no refund promise. Acknowledge, next step, help link.",
           label=f"template 1 on a reasoning model ({t1r['model']}, {t1r['reasoning_effort']} effort)")
    a.call(lambda c: c.chat.completions.create(**t2r, messages=HEADLINE_MESSAGES), HEADLINES_REASONING,
           reasoning=("Audience: sales managers, 50-500 employees. Pain: manual CRM data entry. Voice: bold, data-driven, "
                      "provocative. Five angles: identity (managers typing), cost (paying closers for admin), promise "
                      "(CRM updates itself), scale (500 employees, zero entry), contrast (quota on calls vs spreadsheets). "
                      "Keep each under ten words, numbered, no extra text."),
           label=f"template 2 on a reasoning model ({t2r['model']}, {t2r['reasoning_effort']} effort)")
    a.call(lambda c: c.chat.completions.create(**t3s, messages=t3_messages), sampled,
           label=f"template 3 on a sampling model ({t3s['model']}, temperature {t3s['temperature']})")
