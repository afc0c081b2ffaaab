"""Exercise 10, an alternative: the support context as three developer messages, review reasons from a
generator, model_copy grounding, a dict of pending skus, accumulate-based logprob spans, a finditer merge."""


import itertools
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import openai
from openai import OpenAI
from openai.types import Batch

from labkit.costs import cost

# Lesson 05's classifier, reused as a component: its request, schema and labelled fields.
from labkit.course.ex05 import request_for

# The lesson's data, schemas, prompts and contract (see labkit/course/ex10.py).
from labkit.course.ex10 import (
    CONTENT_MODEL,
    CONTRACT,
    FALLBACK_TEMPLATE,
    KB,
    LARGE_MODEL,
    LEAD_EFFORT,
    LEAD_MAX_OUTPUT,
    LEAD_MODEL,
    LEAD_TEMPERATURE,
    PERSONAL_EFFORT,
    PERSONAL_INSTRUCTIONS,
    PERSONAL_MAX_OUTPUT,
    PERSONAL_MODEL,
    PERSONAL_TEMPERATURE,
    SMALL_MODEL,
    SUPPORT_EFFORT,
    SUPPORT_INSTRUCTIONS,
    SUPPORT_MAX_OUTPUT,
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

# =========================================================================== 1. support auto-reply


def support_input(ticket: Ticket, customer: Customer) -> list[dict[str, str]]:
    """The draft request's messages: the instructions, the knowledge base and the customer's record, then the ticket."""
    return [
        {"role": "developer", "content": SUPPORT_INSTRUCTIONS},
        {"role": "developer", "content": "# Knowledge base\n" + kb_text()},
        {"role": "developer", "content": "# This customer\n" + history_text(customer)},
        {"role": "user", "content": ticket_text(ticket)},
    ]


def draft_reply(client: OpenAI, ticket: Ticket, customer: Customer) -> SupportResponse | Refusal:
    """One Structured Outputs request: the parsed SupportResponse, or a Refusal if the model declines."""
    response = client.responses.parse(model=SUPPORT_MODEL, input=support_input(ticket, customer), text_format=SupportResponse,
                                      reasoning={"effort": SUPPORT_EFFORT}, max_output_tokens=SUPPORT_MAX_OUTPUT)
    if response.output_parsed is not None:
        return response.output_parsed
    for item in response.output:
        for part in getattr(item, "content", None) or []:
            if getattr(part, "type", "") == "refusal":
                return Refusal(part.refusal)
    return Refusal("no usable draft")


def review_reasons(ticket: Ticket, customer: Customer, draft: SupportResponse | Refusal) -> list[str]:
    """Why a person must see this draft before the customer does; [] means it may be sent."""
    return list(_reasons(ticket, customer, draft))


def _reasons(ticket: Ticket, customer: Customer, draft: SupportResponse | Refusal) -> Any:
    """One reason at a time, as a generator."""
    if isinstance(draft, Refusal):
        yield "refused: " + draft.reason
        return
    if draft.needs_human:
        yield "flagged for a human"
    if draft.confidence < CONTRACT.min_confidence:
        yield "low confidence"
    for where, text in (("ticket", ticket.text), ("answer", draft.answer)):
        for term in sensitive_terms_in(text):
            yield f"sensitive term in the {where}: {term}"
    for source in draft.sources:
        if source in CONTRACT.sensitive_articles:
            yield f"policy article {source}"
        if source not in KB:
            yield f"unknown article {source}"
    known = set().union(claims(ticket.text), claims(history_text(customer)),
                        *(claims(KB[s].text) for s in draft.sources if s in KB))
    for claim in sorted(claims(draft.answer)):
        if claim not in known:
            yield f"unsupported claim: {claim}"


def handle_ticket(client: OpenAI, desk: SupportDesk, ticket: Ticket, customer: Customer) -> str:
    """Draft a reply, then send it (CONTRACT.route_sent) or hold it for review (CONTRACT.route_review)."""
    draft = draft_reply(client, ticket, customer)
    reasons = review_reasons(ticket, customer, draft)
    if not reasons and isinstance(draft, SupportResponse):
        desk.send(ticket, customer, draft)
        return CONTRACT.route_sent
    desk.hold(ticket, customer, draft, reasons or ["refused"])
    return CONTRACT.route_review


# =========================================================================== 2. lead extraction


def ground_lead(lead: Lead, text: str) -> Lead:
    """A copy of ``lead`` where every value the text does not state (appears_in) is None."""
    update = {name: None for name, value in lead if value is not None and not appears_in(value, text, name)}
    return lead.model_copy(update=update)


def extract_leads(client: OpenAI, text: str) -> list[Lead]:
    """Every lead in ``text`` (Structured Outputs, nullable fields), grounded in the text; [] if refused."""
    completion = client.chat.completions.parse(model=LEAD_MODEL, messages=lead_input(text), response_format=LeadExtraction,
                                               reasoning_effort=LEAD_EFFORT, temperature=LEAD_TEMPERATURE,
                                               max_completion_tokens=LEAD_MAX_OUTPUT)
    message = completion.choices[0].message
    if message.refusal or not message.parsed:
        return []
    leads = []
    for lead in message.parsed.leads:
        kept = ground_lead(lead, text)
        if any(value is not None for _, value in kept):
            leads.append(kept)
    return leads


# =========================================================================== 3. content at scale


def write_batch_file(products: list[Product], path: str | Path) -> Path:
    """One JSON Lines request per product: custom_id (its sku), method, url and body (content_body)."""
    target = Path(path)
    rows = ({"custom_id": p.sku, "method": "POST", "url": CONTRACT.batch_endpoint, "body": content_body(p)} for p in products)
    target.write_bytes("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8"))
    return target


def submit_batch(client: OpenAI, path: str | Path) -> Batch:
    """Upload the file (purpose "batch") and create its batch on CONTRACT.batch_endpoint, 24-hour window."""
    upload = client.files.create(file=Path(path), purpose="batch")
    return client.batches.create(input_file_id=upload.id, endpoint=CONTRACT.batch_endpoint,
                                 completion_window=CONTRACT.completion_window)


def wait_for_batch(client: OpenAI, batch_id: str, *, sleep: Any = time.sleep, poll_seconds: float = CONTRACT.poll_seconds) -> Batch:
    """Poll the batch until its status is terminal (CONTRACT.terminal); wait with ``sleep`` between polls."""
    batch = client.batches.retrieve(batch_id)
    while batch.status not in CONTRACT.terminal:
        sleep(poll_seconds)
        batch = client.batches.retrieve(batch_id)
    return batch


def read_results(client: OpenAI, batch: Batch) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The batch's answers by custom_id: (response bodies of the successes, failures as {"status", "error"})."""
    ok: dict[str, dict[str, Any]] = {}
    failed: dict[str, dict[str, Any]] = {}
    for file_id in filter(None, [batch.output_file_id, batch.error_file_id]):
        for line in client.files.content(file_id).text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            answer = row.get("response")
            if answer and answer.get("status_code") == 200:
                ok[row["custom_id"]] = answer["body"]
                continue
            body = (answer or {}).get("body") or {}
            failed[row["custom_id"]] = {"status": answer.get("status_code") if answer else None,
                                        "error": row.get("error") or body.get("error")}
    return ok, failed


def run_content_batch(client: OpenAI, products: list[Product], folder: str | Path, *, sleep: Any = time.sleep,
                      poll_seconds: float = CONTRACT.poll_seconds) -> ContentRun:
    """Describe every product through the Batch API, sending what failed (if worth it) again in a new batch."""
    run = ContentRun()
    todo = {p.sku: p for p in products}
    for number in range(1, CONTRACT.max_batches + 1):
        if not todo:
            break
        file = write_batch_file(list(todo.values()), Path(folder) / f"content-{number}.jsonl")
        created = submit_batch(client, file)
        done = wait_for_batch(client, created.id, sleep=sleep, poll_seconds=poll_seconds)
        run.batch_ids.append(done.id)
        ok, failed = read_results(client, done)
        retry: dict[str, Product] = {}
        for sku, product in todo.items():
            if sku in ok:
                body = ok[sku]
                run.usages.append(body["usage"])
                if body.get("status") == "completed":
                    run.texts[sku] = output_text(body) or ""
                    run.failures.pop(sku, None)
                else:
                    run.failures[sku] = "incomplete: " + json.dumps(body.get("incomplete_details"))
                continue
            if sku not in failed:
                run.failures[sku] = f"not run: batch {done.status}"
                continue
            status = failed[sku]["status"]
            error = failed[sku]["error"] or {}
            run.failures[sku] = f"status {status}: {error.get('code')} {error.get('message')}"
            if status in CONTRACT.retry_statuses or error.get("code") in CONTRACT.unrun_codes:
                retry[sku] = product
        todo = retry
    return run


def batch_cost(run: ContentRun, model: str = CONTENT_MODEL) -> tuple[float, float]:
    """(what the run's answers cost at Batch API prices, what the same answers cost sent one by one), in USD."""
    prices = [(cost(u, model, tier="batch").total_usd, cost(u, model).total_usd) for u in run.usages]
    return sum(p[0] for p in prices), sum(p[1] for p in prices)


# =========================================================================== 4. routing


def confidence(completion: Any) -> float:
    """The probability of the least certain label of a classification answered with logprobs (0.0 without them)."""
    choice = completion.choices[0]
    tokens = (choice.logprobs.content if choice.logprobs else None) or []
    if not tokens:
        return 0.0
    ends = list(itertools.accumulate(len(t.bytes or b"") for t in tokens))
    starts = [0, *ends[:-1]]
    probabilities = []
    for start, stop in label_spans(choice.message.content or "").values():
        total = sum(t.logprob for t, a, b in zip(tokens, starts, ends) if a < stop and b > start)
        probabilities.append(math.exp(total))
    return min(probabilities) if probabilities else 0.0


def route_email(client: OpenAI, email: dict[str, Any]) -> Routed:
    """Lesson 05's classifier on the small model; the large model only when the small one is unsure or fails."""
    spent: list[tuple[str, Any]] = []
    request = request_for(email)
    why = ""
    sure = 0.0
    try:
        small = client.chat.completions.parse(**request, logprobs=True)
        spent.append((SMALL_MODEL, small.usage))
        answer = small.choices[0].message.parsed
        sure = confidence(small) if answer is not None else 0.0
        if answer is not None and sure >= CONTRACT.escalate_below:
            return Routed(email["id"], answer, SMALL_MODEL, sure, False, "", spent)
        why = "refused" if answer is None else f"unsure ({sure:.2f})"
    except openai.LengthFinishReasonError as err:
        spent.append((SMALL_MODEL, err.completion.usage))
        why = "cut off"
    except openai.APIError as err:
        why = f"error {err.__class__.__name__}"
    big = client.chat.completions.parse(**(request | {"model": LARGE_MODEL}))
    spent.append((LARGE_MODEL, big.usage))
    return Routed(email["id"], big.choices[0].message.parsed, LARGE_MODEL, sure, True, why, spent)


def evaluate_routing(client: OpenAI, emails: list[dict[str, Any]]) -> RoutingReport:
    """Routing against always using the large model, on labelled emails: accuracy and cost of each."""
    n = len(emails)
    routed_ok = routed_usd = large_ok = large_usd = 0.0
    escalated = 0
    for email in emails:
        r = route_email(client, email)
        escalated += int(r.escalated)
        routed_ok += correct(r.classification, email)
        routed_usd += sum(cost(u, m).total_usd for m, u in r.usages)
    for email in emails:
        big = client.chat.completions.parse(**(request_for(email) | {"model": LARGE_MODEL}))
        large_ok += correct(big.choices[0].message.parsed, email)
        large_usd += cost(big.usage, LARGE_MODEL).total_usd
    return RoutingReport(emails=n, escalated=escalated, routed_accuracy=routed_ok / n, large_accuracy=large_ok / n,
                         routed_usd=routed_usd, large_usd=large_usd)


# =========================================================================== 5. personalization


def personal_request(customer: Customer) -> dict[str, Any]:
    """One customer's draft request: what every customer shares first, their record last."""
    return {
        "model": PERSONAL_MODEL,
        "reasoning_effort": PERSONAL_EFFORT,
        "temperature": PERSONAL_TEMPERATURE,
        "max_completion_tokens": PERSONAL_MAX_OUTPUT,
        "messages": [
            {"role": "developer", "content": PERSONAL_INSTRUCTIONS + "\n\n" + style_guide()},
            {"role": "user", "content": json.dumps(campaign_record(customer))},
        ],
    }


def fill_merge_fields(draft: str, customer: Customer) -> str:
    """Replace each {field} of CONTRACT.merge_fields with the customer's value; any other {placeholder} raises ValueError."""
    record = campaign_record(customer)
    pieces: list[str] = []
    last = 0
    for match in re.finditer(r"\{([^{}]*)\}", draft):
        name = match.group(1)
        if name not in CONTRACT.merge_fields:
            raise ValueError(f"placeholder {{{name}}} is not a merge field")
        pieces.append(draft[last:match.start()])
        pieces.append(str(record[name]))
        last = match.end()
    pieces.append(draft[last:])
    return "".join(pieces)


def personalize(client: OpenAI, customer: Customer) -> PersonalMessage:
    """One customer's message: the model's draft filled from their record, or the fallback when it cannot be trusted."""
    completion = client.chat.completions.create(**personal_request(customer))
    choice = completion.choices[0]
    draft = (choice.message.content or "").strip()
    problems: list[str] = []
    text = ""
    if not draft:
        problems.append("empty draft")
    elif choice.finish_reason != "stop":
        problems.append("cut off: " + str(choice.finish_reason))
    else:
        try:
            text = fill_merge_fields(draft, customer)
        except ValueError as err:
            problems.append(str(err))
        else:
            problems.extend(sorted(facts(text) - allowed_facts(customer)))
    if problems:
        return PersonalMessage(customer.id, fill_merge_fields(FALLBACK_TEMPLATE, customer), "fallback", problems, completion.usage)
    return PersonalMessage(customer.id, text, "model", [], completion.usage)


def cost_per_1000(messages: list[PersonalMessage], model: str = PERSONAL_MODEL) -> float:
    """What 1,000 such messages cost, in USD: the mean cost of these (from their usage) times 1,000."""
    if not messages:
        return 0.0
    each = [cost(m.usage, model).total_usd for m in messages]
    return CONTRACT.per_messages * sum(each) / len(each)

