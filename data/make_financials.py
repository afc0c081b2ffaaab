"""Make data/financials_q3_2025.csv: a small, seeded quarterly P&L for exercise 02 (template 3).

The course ships this file; this script documents how it was made and rebuilds it byte for byte:

    python data/make_financials.py            # rewrite the CSV
    python data/make_financials.py --check    # exit 1 if the CSV differs from what the script makes
    python data/make_financials.py --answer   # print the correct answer, derived from the CSV

Figures are invented for the course (a fictional project-management SaaS company). One row per
month (July, August, September 2025) per revenue line or expense category, in whole US dollars.
Net profit is total revenue minus total expenses: every cost of the quarter is in the file.
"""

from __future__ import annotations

import csv
import io
import random
import sys
from pathlib import Path

SEED = 20251001
MONTHS = ("2025-07", "2025-08", "2025-09")
COLUMNS = ("month", "type", "category", "amount_usd")
#: Monthly base amounts (USD). Growth is per month; noise is +/-4 %, seeded.
REVENUE = {"Subscriptions": (401_000, 0.030), "Professional services": (57_500, 0.010)}
EXPENSES = {
    "Salaries and benefits": (192_000, 0.010),
    "Sales and marketing": (76_500, 0.020),
    "Cloud hosting": (47_800, 0.015),
    "Contractors": (39_200, 0.000),
    "Office and facilities": (21_300, 0.000),
    "Software licenses": (13_900, 0.005),
    "Travel": (8_600, 0.000),
}
CSV_PATH = Path(__file__).resolve().with_name("financials_q3_2025.csv")


def rows(seed: int = SEED) -> list[dict[str, str]]:
    """The data set's rows, in file order (by month; revenue lines first)."""
    rng = random.Random(seed)
    out = []
    for m, month in enumerate(MONTHS):
        for kind, table in (("revenue", REVENUE), ("expense", EXPENSES)):
            for category, (base, growth) in table.items():
                amount = round(base * (1 + growth) ** m * (1 + rng.uniform(-0.04, 0.04)))
                out.append({"month": month, "type": kind, "category": category, "amount_usd": str(amount)})
    return out


def render(data: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    return buf.getvalue()


def answer(text: str) -> dict[str, object]:
    """The correct answer from the CSV text: totals, net profit, margin and top-3 expense categories."""
    revenue, expenses = 0, {}
    for row in csv.DictReader(io.StringIO(text)):
        amount = int(row["amount_usd"])
        if row["type"] == "revenue":
            revenue += amount
        else:
            expenses[row["category"]] = expenses.get(row["category"], 0) + amount
    total_expenses = sum(expenses.values())
    net = revenue - total_expenses
    top = sorted(expenses.items(), key=lambda kv: kv[1], reverse=True)[:3]
    return {
        "total_revenue": revenue,
        "total_expenses": total_expenses,
        "net_profit": net,
        "net_profit_margin_pct": round(100 * net / revenue, 2),
        "top_expense_categories": [name for name, _ in top],
        "top_expense_amounts": [amt for _, amt in top],
    }


def main(argv: list[str]) -> int:
    text = render(rows())
    if "--check" in argv:
        same = CSV_PATH.exists() and CSV_PATH.read_text() == text
        print("up to date" if same else f"{CSV_PATH.name} differs from what {Path(__file__).name} makes: rerun it")
        return 0 if same else 1
    if "--answer" in argv:
        for key, value in answer(CSV_PATH.read_text()).items():
            print(f"{key}: {value}")
        return 0
    CSV_PATH.write_text(text)
    print(f"wrote {CSV_PATH} ({text.count(chr(10)) - 1} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
