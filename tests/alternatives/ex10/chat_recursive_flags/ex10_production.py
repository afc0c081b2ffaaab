"""Exercise 10, an alternative: Chat Completions support with a system message and the context in the user
message, reasons as named flags, a recursive batch round, a byte-owner map for logprobs, fsum/fmean costs."""


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
        {"role": "system", "content": SUPPORT_INSTRUCTIONS},
        {"role": "user", "content": "Help articles:\n" + kb_text() + "\n\nAbout the customer:\n" + history_text(customer)
                                    + "\n\nTheir ticket:\n" + ticket_text(ticket)},
    ]


def draft_reply(client: OpenAI, ticket: Ticket, customer: Customer) -> SupportResponse | Refusal:
    """One Structured Outputs request: the parsed SupportResponse, or a Refusal if the model declines."""
    completion = client.chat.completions.parse(model=SUPPORT_MODEL, messages=support_input(ticket, customer),
                                               response_format=SupportResponse, reasoning_effort=SUPPORT_EFFORT,
                                               max_completion_tokens=SUPPORT_MAX_OUTPUT)
    message = completion.choices[0].message
    return message.parsed if message.parsed is not None else Refusal(message.refusal or "declined")


def review_reasons(ticket: Ticket, customer: Customer, draft: SupportResponse | Refusal) -> list[str]:
    """Why a person must see this draft before the customer does; [] means it may be sent."""
    if isinstance(draft, Refusal):
        return ["refusal"]
    checks = {
        "needs_human": draft.needs_human,
        "low_confidence": draft.confidence < CONTRACT.min_confidence,
        "sensitive": any(sensitive_terms_in(t) for t in (ticket.text, draft.answer)),
        "policy_article": any(s in CONTRACT.sensitive_articles for s in draft.sources),
        "unknown_article": any(s not in KB for s in draft.sources),
    }
    support: set[str] = claims(ticket.text) | claims(history_text(customer))
    for s in draft.sources:
        support |= claims(KB[s].text) if s in KB else set()
    checks["unsupported_claim"] = not claims(draft.answer) <= support
    return [name for name, failed in checks.items() if failed]


def handle_ticket(client: OpenAI, desk: SupportDesk, ticket: Ticket, customer: Customer) -> str:
    """Draft a reply, then send it (CONTRACT.route_sent) or hold it for review (CONTRACT.route_review)."""
    draft = draft_reply(client, ticket, customer)
    reasons = review_reasons(ticket, customer, draft)
    match draft:
        case SupportResponse() if not reasons:
            desk.send(ticket, customer, draft)
            return CONTRACT.route_sent
        case _:
            desk.hold(ticket, customer, draft, reasons)
            return CONTRACT.route_review


# =========================================================================== 2. lead extraction


def ground_lead(lead: Lead, text: str) -> Lead:
    """A copy of ``lead`` where every value the text does not state (appears_in) is None."""
    data = {}
    for name in type(lead).model_fields:
        value = getattr(lead, name)
        data[name] = value if value is None or appears_in(value, text, name) else None
    return type(lead)(**data)


def extract_leads(client: OpenAI, text: str) -> list[Lead]:
    """Every lead in ``text`` (Structured Outputs, nullable fields), grounded in the text; [] if refused."""
    completion = client.chat.completions.parse(messages=lead_input(text), model=LEAD_MODEL, response_format=LeadExtraction,
                                               temperature=LEAD_TEMPERATURE, reasoning_effort=LEAD_EFFORT,
                                               max_completion_tokens=LEAD_MAX_OUTPUT)
    parsed = completion.choices[0].message.parsed
    grounded = (ground_lead(lead, text) for lead in (parsed.leads if parsed else []))
    return [lead for lead in grounded if lead.model_dump(exclude_none=True)]


# =========================================================================== 3. content at scale


def write_batch_file(products: list[Product], path: str | Path) -> Path:
    """One JSON Lines request per product: custom_id (its sku), method, url and body (content_body)."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        for product in products:
            json.dump({"custom_id": product.sku, "method": "POST", "url": CONTRACT.batch_endpoint,
                       "body": content_body(product)}, handle, ensure_ascii=False)
            handle.write("\n")
    return path


def submit_batch(client: OpenAI, path: str | Path) -> Batch:
    """Upload the file (purpose "batch") and create its batch on CONTRACT.batch_endpoint, 24-hour window."""
    path = Path(path)
    file = client.files.create(file=(path.name, path.read_bytes(), "application/jsonl"), purpose="batch")
    return client.batches.create(completion_window=CONTRACT.completion_window, endpoint=CONTRACT.batch_endpoint,
                                 input_file_id=file.id)


def wait_for_batch(client: OpenAI, batch_id: str, *, sleep: Any = time.sleep, poll_seconds: float = CONTRACT.poll_seconds) -> Batch:
    """Poll the batch until its status is terminal (CONTRACT.terminal); wait with ``sleep`` between polls."""
    for _ in itertools.count():
        batch = client.batches.retrieve(batch_id)
        if batch.status in CONTRACT.terminal:
            return batch
        sleep(poll_seconds)
    raise AssertionError("unreachable")


def read_results(client: OpenAI, batch: Batch) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The batch's answers by custom_id: (response bodies of the successes, failures as {"status", "error"})."""
    def lines() -> Any:
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id is not None:
                yield from (json.loads(x) for x in client.files.content(file_id).text.split("\n") if x.strip())

    ok, failed = {}, {}
    for row in lines():
        response = row.get("response") or {}
        code = response.get("status_code")
        if code == 200:
            ok[row["custom_id"]] = response["body"]
        else:
            failed[row["custom_id"]] = {"status": code, "error": row.get("error") or (response.get("body") or {}).get("error")}
    return ok, failed


def run_content_batch(client: OpenAI, products: list[Product], folder: str | Path, *, sleep: Any = time.sleep,
                      poll_seconds: float = CONTRACT.poll_seconds) -> ContentRun:
    """Describe every product through the Batch API, sending what failed (if worth it) again in a new batch."""
    run = ContentRun()

    def one_round(left: list[Product], number: int) -> None:
        if not left or number > CONTRACT.max_batches:
            return
        batch = wait_for_batch(client, submit_batch(client, write_batch_file(left, Path(folder) / f"content-{number}.jsonl")).id,
                               sleep=sleep, poll_seconds=poll_seconds)
        run.batch_ids.append(batch.id)
        ok, failed = read_results(client, batch)
        again = []
        for product in left:
            body, failure = ok.get(product.sku), failed.get(product.sku)
            if body is not None:
                run.usages.append(body["usage"])
                if body.get("status") == "completed":
                    run.texts[product.sku] = output_text(body) or ""
                    run.failures.pop(product.sku, None)
                else:
                    run.failures[product.sku] = "cut off at the output budget"
            elif failure is not None:
                code = (failure["error"] or {}).get("code")
                run.failures[product.sku] = f"HTTP {failure['status']} ({code})"
                if failure["status"] in CONTRACT.retry_statuses or code in CONTRACT.unrun_codes:
                    again.append(product)
            else:
                run.failures[product.sku] = f"no result (batch {batch.status})"
        one_round(again, number + 1)

    one_round(list(products), 1)
    return run


def batch_cost(run: ContentRun, model: str = CONTENT_MODEL) -> tuple[float, float]:
    """(what the run's answers cost at Batch API prices, what the same answers cost sent one by one), in USD."""
    at_batch = math.fsum(cost(u, model, tier="batch").total_usd for u in run.usages)
    at_standard = math.fsum(cost(u, model).total_usd for u in run.usages)
    return at_batch, at_standard


# =========================================================================== 4. routing


def confidence(completion: Any) -> float:
    """The probability of the least certain label of a classification answered with logprobs (0.0 without them)."""
    choice = completion.choices[0]
    if not choice.logprobs or not choice.logprobs.content:
        return 0.0
    owner: list[int] = []  # the token index of every byte of the answer
    for index, token in enumerate(choice.logprobs.content):
        owner.extend([index] * len(token.bytes or []))
    lowest = 1.0
    for start, stop in label_spans(choice.message.content or "").values():
        covering = set(owner[start:stop])
        lowest = min(lowest, math.exp(sum(choice.logprobs.content[i].logprob for i in covering)))
    return lowest


def route_email(client: OpenAI, email: dict[str, Any]) -> Routed:
    """Lesson 05's classifier on the small model; the large model only when the small one is unsure or fails."""
    usages: list[tuple[str, Any]] = []
    small_score, reason = 0.0, ""
    try:
        small = client.chat.completions.parse(**{**request_for(email), "logprobs": True})
    except openai.LengthFinishReasonError as err:
        usages.append((SMALL_MODEL, err.completion.usage))
        reason = "length"
    except openai.OpenAIError:
        reason = "error"
    else:
        usages.append((SMALL_MODEL, small.usage))
        label = small.choices[0].message.parsed
        if label is None:
            reason = "refusal"
        else:
            small_score = confidence(small)
            if not small_score < CONTRACT.escalate_below:
                return Routed(email["id"], label, SMALL_MODEL, small_score, False, usages=usages)
            reason = "low confidence"
    large = client.chat.completions.parse(**{**request_for(email), "model": LARGE_MODEL})
    usages.append((LARGE_MODEL, large.usage))
    return Routed(email["id"], large.choices[0].message.parsed, LARGE_MODEL, small_score, True, reason, usages)


def evaluate_routing(client: OpenAI, emails: list[dict[str, Any]]) -> RoutingReport:
    """Routing against always using the large model, on labelled emails: accuracy and cost of each."""
    routed = list(map(lambda e: route_email(client, e), emails))
    baseline = list(map(lambda e: client.chat.completions.parse(**{**request_for(e), "model": LARGE_MODEL}), emails))
    share = lambda hits: sum(hits) / len(emails)  # noqa: E731
    return RoutingReport(
        emails=len(emails),
        escalated=len([r for r in routed if r.escalated]),
        routed_accuracy=share(correct(r.classification, e) for r, e in zip(routed, emails)),
        large_accuracy=share(correct(b.choices[0].message.parsed, e) for b, e in zip(baseline, emails)),
        routed_usd=math.fsum(cost(u, m).total_usd for r in routed for m, u in r.usages),
        large_usd=math.fsum(cost(b.usage, LARGE_MODEL).total_usd for b in baseline),
    )


# =========================================================================== 5. personalization


def personal_request(customer: Customer) -> dict[str, Any]:
    """One customer's draft request: what every customer shares first, their record last."""
    record = campaign_record(customer)
    return dict(
        model=PERSONAL_MODEL,
        messages=[{"role": "developer", "content": f"{PERSONAL_INSTRUCTIONS}\n\n{style_guide()}"},
                  {"role": "user", "content": "Write the message for this customer.\n" + json.dumps(record, indent=2)}],
        reasoning_effort=PERSONAL_EFFORT, temperature=PERSONAL_TEMPERATURE, max_completion_tokens=PERSONAL_MAX_OUTPUT,
        prompt_cache_key="personalization",
    )


def fill_merge_fields(draft: str, customer: Customer) -> str:
    """Replace each {field} of CONTRACT.merge_fields with the customer's value; any other {placeholder} raises ValueError."""
    values = {name: str(value) for name, value in campaign_record(customer).items() if name in CONTRACT.merge_fields}

    def swap(match: re.Match[str]) -> str:
        try:
            return values[match[1]]
        except KeyError:
            raise ValueError(f"unknown placeholder: {match[0]}") from None

    return re.compile(r"\{([^{}]*)\}").sub(swap, draft)


def personalize(client: OpenAI, customer: Customer) -> PersonalMessage:
    """One customer's message: the model's draft filled from their record, or the fallback when it cannot be trusted."""
    answer = client.chat.completions.create(**personal_request(customer))
    choice = answer.choices[0]
    raw = choice.message.content or ""

    def fallback(why: list[str]) -> PersonalMessage:
        return PersonalMessage(customer.id, fill_merge_fields(FALLBACK_TEMPLATE, customer), "fallback", why, answer.usage)

    if choice.finish_reason != "stop":
        return fallback([f"finish_reason={choice.finish_reason}"])
    if not raw.strip():
        return fallback(["empty"])
    try:
        filled = fill_merge_fields(raw, customer)
    except ValueError as err:
        return fallback([str(err)])
    wrong = sorted(facts(filled) - allowed_facts(customer))
    return fallback(wrong) if wrong else PersonalMessage(customer.id, filled, "model", [], answer.usage)


def cost_per_1000(messages: list[PersonalMessage], model: str = PERSONAL_MODEL) -> float:
    """What 1,000 such messages cost, in USD: the mean cost of these (from their usage) times 1,000."""
    return statistics.fmean(cost(m.usage, model).total_usd for m in messages) * CONTRACT.per_messages

