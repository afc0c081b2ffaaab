"""Exercise 10, another valid solution: Chat Completions everywhere, polling with backoff, table-driven rules.

Differences from the reference: the support draft goes through ``chat.completions.parse`` with one
system message; the review rules are a table of (condition, reason); the batch is polled with a
doubling pause (capped); routing asks for ``top_logprobs`` too and sums logprobs with offsets from
``itertools.accumulate``; merge fields are filled by a small class; averages use ``statistics``.
"""

import itertools
import json
import math
import re
import statistics
import time
from pathlib import Path
from typing import Any

import openai
from openai import OpenAI

from labkit.costs import cost
from labkit.course.ex05 import FIELDS, request_for
from labkit.course.ex10 import (
    CONTENT_MODEL,
    CONTRACT,
    FALLBACK_TEMPLATE,
    KB,
    LARGE_MODEL,
    PERSONAL_INSTRUCTIONS,
    PERSONAL_MODEL,
    SMALL_MODEL,
    SUPPORT_INSTRUCTIONS,
    SUPPORT_MODEL,
    ContentRun,
    Customer,
    Lead,
    LeadExtraction,
    PersonalMessage,
    Product,
    Refusal,
    Routed,
    RoutingReport,
    SupportDesk,
    SupportResponse,
    Ticket,
    allowed_facts,
    appears_in,
    campaign_record,
    claims,
    content_body,
    correct,
    facts,
    history_text,
    kb_text,
    label_spans,
    lead_input,
    output_text,
    sensitive_terms_in,
    style_guide,
    ticket_text,
)

# --------------------------------------------------------------------------- 1


def support_input(ticket: Ticket, customer: Customer) -> list[dict[str, str]]:
    system = "\n\n".join([SUPPORT_INSTRUCTIONS, "=== Knowledge base ===", kb_text(), "=== Customer ===", history_text(customer)])
    return [{"role": "system", "content": system}, {"role": "user", "content": ticket_text(ticket)}]


def draft_reply(client: OpenAI, ticket: Ticket, customer: Customer) -> SupportResponse | Refusal:
    completion = client.chat.completions.parse(model=SUPPORT_MODEL, messages=support_input(ticket, customer),
                                               response_format=SupportResponse, reasoning_effort="low",
                                               max_completion_tokens=2_000)
    message = completion.choices[0].message
    if message.refusal is not None:
        return Refusal(message.refusal)
    if message.parsed is None:
        return Refusal("unreadable draft")
    return message.parsed


def review_reasons(ticket: Ticket, customer: Customer, draft: SupportResponse | Refusal) -> list[str]:
    if isinstance(draft, Refusal):
        return [draft.reason or "refused"]
    stated = set(claims(ticket.text)) | claims(history_text(customer))
    stated = stated.union(*(claims(KB[s].text) for s in draft.sources if s in KB))
    rules = [
        (draft.needs_human, "needs_human"),
        (draft.confidence < CONTRACT.min_confidence, "low confidence"),
        (bool(sensitive_terms_in(ticket.text + "\n" + draft.answer)), "sensitive words"),
        (any(s in CONTRACT.sensitive_articles for s in draft.sources), "sensitive article"),
        (any(s not in KB for s in draft.sources), "unknown article"),
        (not claims(draft.answer) <= stated, "unsupported claims"),
    ]
    return [reason for broken, reason in rules if broken]


def handle_ticket(client: OpenAI, desk: SupportDesk, ticket: Ticket, customer: Customer) -> str:
    draft = draft_reply(client, ticket, customer)
    reasons = review_reasons(ticket, customer, draft)
    if isinstance(draft, SupportResponse) and not reasons:
        desk.send(ticket, customer, draft)
        return CONTRACT.route_sent
    desk.hold(ticket, customer, draft, reasons or ["refused"])
    return CONTRACT.route_review


# --------------------------------------------------------------------------- 2


def ground_lead(lead: Lead, text: str) -> Lead:
    data = lead.model_dump()
    return Lead.model_validate({k: (v if v is not None and appears_in(v, text, k) else None) for k, v in data.items()})


def extract_leads(client: OpenAI, text: str) -> list[Lead]:
    completion = client.chat.completions.parse(model="gpt-6-luna", messages=lead_input(text), response_format=LeadExtraction,
                                               reasoning_effort="none", temperature=0, max_completion_tokens=1_200)
    parsed = completion.choices[0].message.parsed
    if parsed is None:
        return []
    return [g for g in (ground_lead(lead, text) for lead in parsed.leads) if any(v is not None for v in g.model_dump().values())]


# --------------------------------------------------------------------------- 3


def write_batch_file(products: list[Product], path: str | Path) -> Path:
    target = Path(path)
    target.write_text("".join(json.dumps({"custom_id": p.sku, "method": "POST", "url": CONTRACT.batch_endpoint,
                                          "body": content_body(p)}) + "\n" for p in products), encoding="utf-8")
    return target


def submit_batch(client: OpenAI, path: str | Path) -> Any:
    with open(path, "rb") as handle:
        file_id = client.files.create(file=handle, purpose="batch").id
    return client.batches.create(input_file_id=file_id, endpoint=CONTRACT.batch_endpoint, completion_window="24h",
                                 metadata={"job": "product-copy"})


def wait_for_batch(client: OpenAI, batch_id: str, *, sleep: Any = time.sleep, poll_seconds: float = CONTRACT.poll_seconds) -> Any:
    pause = poll_seconds
    for _ in itertools.count():
        batch = client.batches.retrieve(batch_id)
        if batch.status in CONTRACT.terminal:
            return batch
        sleep(pause)
        pause = min(pause * 2, poll_seconds * 8)  # back off: a batch can take hours
    raise AssertionError("unreachable")


def read_results(client: OpenAI, batch: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    ok: dict[str, dict[str, Any]] = {}
    failed: dict[str, dict[str, Any]] = {}
    for file_id in [f for f in (batch.output_file_id, batch.error_file_id) if f]:
        for raw in client.files.content(file_id).text.split("\n"):
            if raw.strip():
                row = json.loads(raw)
                response = row["response"] or {}
                target = ok if response.get("status_code") == 200 else failed
                target[row["custom_id"]] = response["body"] if target is ok else {
                    "status": response.get("status_code"), "error": row["error"] or (response.get("body") or {}).get("error")}
    return ok, failed


def run_content_batch(client: OpenAI, products: list[Product], folder: str | Path, *, sleep: Any = time.sleep,
                      poll_seconds: float = CONTRACT.poll_seconds) -> ContentRun:
    run = ContentRun()
    todo = list(products)
    rounds = 0
    while todo and rounds < CONTRACT.max_batches:
        rounds += 1
        submitted = submit_batch(client, write_batch_file(todo, Path(folder) / f"products-{rounds}.jsonl"))
        batch = wait_for_batch(client, submitted.id, sleep=sleep, poll_seconds=poll_seconds)
        run.batch_ids.append(batch.id)
        ok, failed = read_results(client, batch)
        again = []
        for product in todo:
            body, failure = ok.get(product.sku), failed.get(product.sku)
            if body is not None:
                run.usages.append(body["usage"])
                if body["status"] == "completed":
                    run.texts[product.sku] = output_text(body) or ""
                    run.failures.pop(product.sku, None)
                else:
                    run.failures[product.sku] = "incomplete"
            elif failure is not None:
                run.failures[product.sku] = json.dumps(failure)
                code = (failure["error"] or {}).get("code")
                if failure["status"] in CONTRACT.retry_statuses or code in CONTRACT.unrun_codes:
                    again.append(product)
            else:
                run.failures[product.sku] = f"no result ({batch.status})"
        todo = again
    return run


def batch_cost(run: ContentRun, model: str = CONTENT_MODEL) -> tuple[float, float]:
    standard = math.fsum(cost(u, model).total_usd for u in run.usages)
    return math.fsum(cost(u, model, batch=True).total_usd for u in run.usages), standard


# --------------------------------------------------------------------------- 4


def confidence(completion: Any) -> float:
    choice = completion.choices[0]
    if not choice.logprobs or not choice.logprobs.content:
        return 0.0
    tokens = choice.logprobs.content
    ends = list(itertools.accumulate(len(bytes(t.bytes or [])) for t in tokens))
    starts = [0, *ends[:-1]]
    spans = label_spans(choice.message.content or "")
    if len(spans) != len(FIELDS):
        return 0.0
    return min(math.exp(sum(t.logprob for t, a, b in zip(tokens, starts, ends) if a < stop and b > start))
               for start, stop in spans.values())


def route_email(client: OpenAI, email: dict[str, Any]) -> Routed:
    usages: list[tuple[str, Any]] = []
    certainty, reason = 0.0, ""
    try:
        small = client.chat.completions.parse(**request_for(email), logprobs=True, top_logprobs=2)
        usages.append((SMALL_MODEL, small.usage))
        answer = small.choices[0].message.parsed
        certainty = confidence(small) if answer is not None else 0.0
        if answer is not None and not certainty < CONTRACT.escalate_below:
            return Routed(email["id"], answer, SMALL_MODEL, certainty, False, "", usages)
        reason = "uncertain" if answer is not None else "refused"
    except openai.LengthFinishReasonError as err:
        usages.append((SMALL_MODEL, err.completion.usage))
        reason = "cut off"
    except openai.APIError as err:
        reason = f"error {type(err).__name__}"
    big = client.chat.completions.parse(**(request_for(email) | {"model": LARGE_MODEL}))
    usages.append((LARGE_MODEL, big.usage))
    return Routed(email["id"], big.choices[0].message.parsed, LARGE_MODEL, certainty, True, reason, usages)


def evaluate_routing(client: OpenAI, emails: list[dict[str, Any]]) -> RoutingReport:
    routed = [route_email(client, e) for e in emails]
    baseline = [client.chat.completions.parse(**(request_for(e) | {"model": LARGE_MODEL})) for e in emails]
    return RoutingReport(
        emails=len(emails),
        escalated=len([r for r in routed if r.escalated]),
        routed_accuracy=statistics.fmean(correct(r.classification, e) for r, e in zip(routed, emails)),
        large_accuracy=statistics.fmean(correct(b.choices[0].message.parsed, e) for b, e in zip(baseline, emails)),
        routed_usd=math.fsum(cost(u, m).total_usd for r in routed for m, u in r.usages),
        large_usd=math.fsum(cost(b.usage, LARGE_MODEL).total_usd for b in baseline),
    )


# --------------------------------------------------------------------------- 5


class Merge:
    """Fills {field} placeholders from one customer's record, refusing unknown ones."""

    pattern = re.compile(r"\{([^{}]*)\}")

    def __init__(self, customer: Customer) -> None:
        self.record = campaign_record(customer)

    def __call__(self, match: re.Match[str]) -> str:
        if match.group(1) not in CONTRACT.merge_fields:
            raise ValueError(f"unknown merge field {match.group(0)}")
        return str(self.record[match.group(1)])

    def fill(self, text: str) -> str:
        return self.pattern.sub(self, text)


def personal_request(customer: Customer) -> dict[str, Any]:
    return {"model": PERSONAL_MODEL, "reasoning_effort": "none", "temperature": 0.7, "max_completion_tokens": 450,
            "messages": [{"role": "system", "content": PERSONAL_INSTRUCTIONS + "\n\n" + style_guide()},
                         {"role": "user", "content": "Customer: " + json.dumps(campaign_record(customer))}]}


def fill_merge_fields(draft: str, customer: Customer) -> str:
    return Merge(customer).fill(draft)


def personalize(client: OpenAI, customer: Customer) -> PersonalMessage:
    completion = client.chat.completions.create(**personal_request(customer))
    choice = completion.choices[0]
    draft = choice.message.content or ""
    problems = [] if choice.finish_reason == "stop" and draft.strip() else ["draft cut off or empty"]
    text = ""
    if not problems:
        try:
            text = fill_merge_fields(draft, customer)
        except ValueError as err:
            problems.append(str(err))
        else:
            problems += sorted(facts(text) - allowed_facts(customer))
    if problems:
        text = fill_merge_fields(FALLBACK_TEMPLATE, customer)
    return PersonalMessage(customer.id, text, "fallback" if problems else "model", problems, completion.usage)


def cost_per_1000(messages: list[PersonalMessage], model: str = PERSONAL_MODEL) -> float:
    return statistics.fmean(cost(m.usage, model).total_usd for m in messages) * CONTRACT.per_messages
