"""Exercise 10, an alternative: rule functions chained with itertools, model_validate grounding, a path
upload and iter_lines, an itertools.count poll, a match on each outcome, explicit interval sums for
logprobs, a hand-written placeholder scanner, fsum costs.

Exercise 10: the lesson's five production templates, each graded on its success metrics.

1. Support auto-reply: a structured ``SupportResponse`` drafted from the knowledge base and the
   customer's history; drafts that are unsure, policy-sensitive (refunds, legal) or that claim
   what no article says go to a person's review queue instead of the customer.
2. Lead extraction: nullable fields, and a value the text does not state is null, never invented.
3. Content at scale: the Batch API's whole lifecycle (write the JSONL, upload it, create the
   batch, poll it, read the results by ``custom_id``, send the failures again) at half the price.
4. Routing: lesson 05's classifier, reused as it is, with token logprobs as its confidence; only
   uncertain emails go to the larger model.
5. Personalization: drafts with merge fields filled from each customer's record, a fact check
   with a safe fallback, a layout the prompt cache can serve, and the cost per 1,000 messages.

The data, schemas, prompts and the contract the checks test are in labkit/course/ex10.py
(``CONTRACT``; its docstring states each template's rules). Lesson 05's classifier comes from
labkit/course/ex05.py. Edit the TODOs, then run `labkit check ex10` or the last cell of
notebooks/10_production_templates.ipynb. Keep the names the starter gives.
"""

import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
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
    parts = [SUPPORT_INSTRUCTIONS, "Knowledge base:\n" + kb_text(), history_text(customer)]
    return [{"role": "developer", "content": "\n\n".join(parts)}, {"role": "user", "content": ticket_text(ticket)}]


def draft_reply(client: OpenAI, ticket: Ticket, customer: Customer) -> SupportResponse | Refusal:
    """One Structured Outputs request: the parsed SupportResponse, or a Refusal if the model declines."""
    ### BEGIN SOLUTION: draft a structured reply
    ### TODO: client.responses.parse(model=SUPPORT_MODEL, input=support_input(ticket, customer),
    ### text_format=SupportResponse, reasoning={"effort": SUPPORT_EFFORT},
    ### max_output_tokens=SUPPORT_MAX_OUTPUT). A refusal arrives as a content part of type
    ### "refusal" (output_parsed is then None): return Refusal(its text). Else return output_parsed.
    ### (chat.completions.parse works too: there the refusal is message.refusal.)
    response = client.responses.parse(model=SUPPORT_MODEL, input=support_input(ticket, customer), text_format=SupportResponse,
                                      reasoning={"effort": SUPPORT_EFFORT}, max_output_tokens=SUPPORT_MAX_OUTPUT)
    refused = [part.refusal for item in response.output if item.type == "message" for part in item.content if part.type == "refusal"]
    if refused or response.output_parsed is None:
        return Refusal(refused[0] if refused else "the draft could not be read")
    return response.output_parsed
    ### END SOLUTION


def review_reasons(ticket: Ticket, customer: Customer, draft: SupportResponse | Refusal) -> list[str]:
    """Why a person must see this draft before the customer does; [] means it may be sent."""
    if isinstance(draft, Refusal):
        return ["refused: " + draft.reason]

    def flagged() -> Iterator[str]:
        if draft.needs_human:
            yield "flagged for a person by the model"

    def unsure() -> Iterator[str]:
        if draft.confidence < CONTRACT.min_confidence:
            yield f"low confidence ({draft.confidence})"

    def sensitive() -> Iterator[str]:
        for term in dict.fromkeys([*sensitive_terms_in(ticket.text), *sensitive_terms_in(draft.answer)]):
            yield f"sensitive term {term!r}"

    def sources() -> Iterator[str]:
        for source in draft.sources:
            if source in CONTRACT.sensitive_articles:
                yield f"cites policy article {source}"
            if source not in KB:
                yield f"cites unknown article {source}"

    def grounded() -> Iterator[str]:
        backing = [history_text(customer), ticket.text] + [KB[s].text for s in draft.sources if s in KB]
        known = set().union(*(claims(text) for text in backing))
        for claim in sorted(claims(draft.answer)):
            if claim not in known:
                yield f"unsupported claim {claim!r}"

    rules: list[Callable[[], Iterator[str]]] = [flagged, unsure, sensitive, sources, grounded]
    return list(itertools.chain.from_iterable(rule() for rule in rules))


def handle_ticket(client: OpenAI, desk: SupportDesk, ticket: Ticket, customer: Customer) -> str:
    """Draft a reply, then send it (CONTRACT.route_sent) or hold it for review (CONTRACT.route_review)."""
    draft = draft_reply(client, ticket, customer)
    why = review_reasons(ticket, customer, draft)
    match draft:
        case Refusal():
            desk.hold(ticket, customer, draft, why or ["refused"])
            return CONTRACT.route_review
        case _ if why:
            desk.hold(ticket, customer, draft, why)
            return CONTRACT.route_review
        case _:
            desk.send(ticket, customer, draft)
            return CONTRACT.route_sent


# =========================================================================== 2. lead extraction


def ground_lead(lead: Lead, text: str) -> Lead:
    """A copy of ``lead`` where every value the text does not state (appears_in) is None."""
    kept = {}
    for name in type(lead).model_fields:
        value = getattr(lead, name)
        kept[name] = value if value is None or appears_in(value, text, name) else None
    return Lead.model_validate(kept)


def extract_leads(client: OpenAI, text: str) -> list[Lead]:
    """Every lead in ``text`` (Structured Outputs, nullable fields), grounded in the text; [] if refused."""
    ### BEGIN SOLUTION: extract, then ground
    ### TODO: client.chat.completions.parse(model=LEAD_MODEL, messages=lead_input(text),
    ### response_format=LeadExtraction, reasoning_effort=LEAD_EFFORT, temperature=LEAD_TEMPERATURE,
    ### max_completion_tokens=LEAD_MAX_OUTPUT). A refusal (message.refusal set, message.parsed None)
    ### means no leads. Ground each lead with ground_lead, and drop a lead left with no value at all.
    completion = client.chat.completions.parse(model=LEAD_MODEL, messages=lead_input(text), response_format=LeadExtraction,
                                               reasoning_effort=LEAD_EFFORT, temperature=LEAD_TEMPERATURE,
                                               max_completion_tokens=LEAD_MAX_OUTPUT)
    parsed = completion.choices[0].message.parsed
    if parsed is None:  # a refusal
        return []
    grounded = [ground_lead(lead, text) for lead in parsed.leads]
    return [lead for lead in grounded if any(v is not None for v in lead.model_dump().values())]
    ### END SOLUTION


# =========================================================================== 3. content at scale


def write_batch_file(products: list[Product], path: str | Path) -> Path:
    """One JSON Lines request per product: custom_id (its sku), method, url and body (content_body)."""
    target = Path(path)
    lines = (json.dumps({"custom_id": p.sku, "method": "POST", "url": CONTRACT.batch_endpoint, "body": content_body(p)},
                        ensure_ascii=False) for p in products)
    target.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    return target


def submit_batch(client: OpenAI, path: str | Path) -> Batch:
    """Upload the file (purpose "batch") and create its batch on CONTRACT.batch_endpoint, 24-hour window."""
    upload = client.files.create(file=Path(path), purpose="batch")
    return client.batches.create(completion_window=CONTRACT.completion_window, endpoint=CONTRACT.batch_endpoint,
                                 input_file_id=upload.id)


def wait_for_batch(client: OpenAI, batch_id: str, *, sleep: Any = time.sleep, poll_seconds: float = CONTRACT.poll_seconds) -> Batch:
    """Poll the batch until its status is terminal (CONTRACT.terminal); wait with ``sleep`` between polls."""
    for attempt in itertools.count():
        if attempt:
            sleep(poll_seconds)
        current = client.batches.retrieve(batch_id)
        if current.status in CONTRACT.terminal:
            return current
    raise AssertionError("unreachable")


def read_results(client: OpenAI, batch: Batch) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The batch's answers by custom_id: (response bodies of the successes, failures as {"status", "error"})."""
    ok: dict[str, dict[str, Any]] = {}
    failed: dict[str, dict[str, Any]] = {}
    for file_id in filter(None, [batch.output_file_id, batch.error_file_id]):
        for line in client.files.content(file_id).iter_lines():
            if not line.strip():
                continue
            row = json.loads(line)
            match row.get("response"):
                case {"status_code": 200, "body": body}:
                    ok[row["custom_id"]] = body
                case {"status_code": code, **rest}:
                    failed[row["custom_id"]] = {"status": code, "error": row.get("error") or (rest.get("body") or {}).get("error")}
                case _:
                    failed[row["custom_id"]] = {"status": None, "error": row.get("error")}
    return ok, failed


def run_content_batch(client: OpenAI, products: list[Product], folder: str | Path, *, sleep: Any = time.sleep,
                      poll_seconds: float = CONTRACT.poll_seconds) -> ContentRun:
    """Describe every product through the Batch API, sending what failed (if worth it) again in a new batch."""
    run = ContentRun()
    pending: deque[Product] = deque(products)
    folder = Path(folder)
    for number in range(1, CONTRACT.max_batches + 1):
        if not pending:
            break
        batch = submit_batch(client, write_batch_file(list(pending), folder / f"content-{number}.jsonl"))
        batch = wait_for_batch(client, batch.id, sleep=sleep, poll_seconds=poll_seconds)
        run.batch_ids.append(batch.id)
        ok, failed = read_results(client, batch)
        retry: deque[Product] = deque()
        for product in pending:
            match (ok.get(product.sku), failed.get(product.sku)):
                case ({"status": "completed"} as body, _):
                    run.usages.append(body["usage"])
                    run.texts[product.sku] = output_text(body) or ""
                    run.failures.pop(product.sku, None)
                case (dict() as body, _):
                    run.usages.append(body["usage"])
                    run.failures[product.sku] = f"incomplete ({body.get('incomplete_details')})"
                case (None, {"status": status, "error": error}):
                    code = (error or {}).get("code")
                    run.failures[product.sku] = f"failed: status {status}, error {error}"
                    if status in CONTRACT.retry_statuses or code in CONTRACT.unrun_codes:
                        retry.append(product)
                case _:
                    run.failures[product.sku] = f"no result: the batch ended {batch.status}"
        pending = retry
    return run


def batch_cost(run: ContentRun, model: str = CONTENT_MODEL) -> tuple[float, float]:
    """(what the run's answers cost at Batch API prices, what the same answers cost sent one by one), in USD."""
    discounted = math.fsum(cost(u, model, tier="batch").total_usd for u in run.usages)
    one_by_one = math.fsum(cost(u, model).total_usd for u in run.usages)
    return discounted, one_by_one


# =========================================================================== 4. routing


def confidence(completion: Any) -> float:
    """The probability of the least certain label of a classification answered with logprobs (0.0 without them)."""
    choice = completion.choices[0]
    if not choice.logprobs or not choice.logprobs.content:
        return 0.0
    intervals = []
    offset = 0
    for token in choice.logprobs.content:
        size = len(token.bytes) if token.bytes is not None else len(token.token.encode("utf-8"))
        intervals.append((offset, offset + size, token.logprob))
        offset += size
    spans = label_spans(choice.message.content or "")
    probabilities = [math.exp(sum(lp for lo, hi, lp in intervals if lo < stop and hi > start)) for start, stop in spans.values()]
    return min(probabilities) if probabilities else 0.0


def route_email(client: OpenAI, email: dict[str, Any]) -> Routed:
    """Lesson 05's classifier on the small model; the large model only when the small one is unsure or fails."""
    request = request_for(email)
    spent: list[tuple[str, Any]] = []
    sure = 0.0
    why = ""
    answer = None
    try:
        first = client.chat.completions.parse(**request, logprobs=True)
    except openai.LengthFinishReasonError as cut:
        spent.append((SMALL_MODEL, cut.completion.usage))
        why = "small answer truncated"
    except openai.APIError as failure:
        why = f"small model error ({failure.__class__.__name__})"
    else:
        spent.append((SMALL_MODEL, first.usage))
        answer = first.choices[0].message.parsed
        sure = confidence(first) if answer is not None else 0.0
        why = "small model refused" if answer is None else f"least sure label at {sure:.3f}"
    if answer is not None and sure >= CONTRACT.escalate_below:
        return Routed(email["id"], answer, SMALL_MODEL, sure, False, usages=spent)
    second = client.chat.completions.parse(**{**request, "model": LARGE_MODEL})
    spent.append((LARGE_MODEL, second.usage))
    return Routed(email["id"], second.choices[0].message.parsed, LARGE_MODEL, sure, True, why, spent)


def evaluate_routing(client: OpenAI, emails: list[dict[str, Any]]) -> RoutingReport:
    """Routing against always using the large model, on labelled emails: accuracy and cost of each."""
    ### BEGIN SOLUTION: measure both policies
    ### TODO: route every email; separately, classify every email with the large model alone.
    ### Accuracy: the share of emails whose classification is correct(...) (all three labels).
    ### Cost: labkit.costs.cost(usage, model).total_usd summed over every answer (route_email's
    ### usages, the escalations included; the large model's for the baseline).
    routed = [route_email(client, email) for email in emails]
    large = [client.chat.completions.parse(**{**request_for(email), "model": LARGE_MODEL}) for email in emails]
    return RoutingReport(
        emails=len(emails),
        escalated=sum(r.escalated for r in routed),
        routed_accuracy=sum(correct(r.classification, e) for r, e in zip(routed, emails)) / len(emails),
        large_accuracy=sum(correct(c.choices[0].message.parsed, e) for c, e in zip(large, emails)) / len(emails),
        routed_usd=sum(cost(usage, model).total_usd for r in routed for model, usage in r.usages),
        large_usd=sum(cost(c.usage, LARGE_MODEL).total_usd for c in large),
    )
    ### END SOLUTION


# =========================================================================== 5. personalization


def personal_request(customer: Customer) -> dict[str, Any]:
    """One customer's draft request: what every customer shares first, their record last."""
    ### BEGIN SOLUTION: a layout the prompt cache can serve
    ### TODO: messages = a developer message with PERSONAL_INSTRUCTIONS and style_guide() (identical
    ### for every customer: more than 1,024 tokens the cache can reuse), then a user message with
    ### json.dumps(campaign_record(customer)). Model PERSONAL_MODEL, reasoning_effort
    ### PERSONAL_EFFORT, temperature PERSONAL_TEMPERATURE, max_completion_tokens PERSONAL_MAX_OUTPUT.
    shared = f"{PERSONAL_INSTRUCTIONS}\n\n{style_guide()}"
    record = json.dumps(campaign_record(customer), ensure_ascii=False)
    return {
        "model": PERSONAL_MODEL,
        "messages": [{"role": "developer", "content": shared}, {"role": "user", "content": f"Customer record: {record}"}],
        "reasoning_effort": PERSONAL_EFFORT,
        "temperature": PERSONAL_TEMPERATURE,
        "max_completion_tokens": PERSONAL_MAX_OUTPUT,
        "prompt_cache_key": "timeline-campaign",
    }
    ### END SOLUTION


def fill_merge_fields(draft: str, customer: Customer) -> str:
    """Replace each {field} of CONTRACT.merge_fields with the customer's value; any other {placeholder} raises ValueError."""
    record = campaign_record(customer)
    out: list[str] = []
    i = 0
    while i < len(draft):
        opened = draft.find("{", i)
        if opened < 0:
            out.append(draft[i:])
            break
        closed = draft.find("}", opened + 1)
        inner_open = draft.find("{", opened + 1)
        if closed < 0:
            out.append(draft[i:])
            break
        if 0 <= inner_open < closed:  # "{a{b}": the first brace is plain text
            out.append(draft[i:inner_open])
            i = inner_open
            continue
        name = draft[opened + 1:closed]
        if name not in CONTRACT.merge_fields:
            raise ValueError(f"placeholder {{{name}}} is not a merge field")
        out.append(draft[i:opened] + str(record[name]))
        i = closed + 1
    return "".join(out)


def personalize(client: OpenAI, customer: Customer) -> PersonalMessage:
    """One customer's message: the model's draft filled from their record, or the fallback when it cannot be trusted."""
    ### BEGIN SOLUTION: draft, fill, check, fall back
    ### TODO: completion = client.chat.completions.create(**personal_request(customer)). Fill the
    ### draft with fill_merge_fields; problems = sorted(facts(text) - allowed_facts(customer)), or
    ### the ValueError of an unknown placeholder. With problems, an empty draft, or a draft cut off
    ### (finish_reason != "stop"): PersonalMessage(id, fill_merge_fields(FALLBACK_TEMPLATE, customer),
    ### "fallback", problems, usage). Otherwise PersonalMessage(id, text, "model", [], usage).
    completion = client.chat.completions.create(**personal_request(customer))
    choice = completion.choices[0]
    draft = choice.message.content or ""
    try:
        text = fill_merge_fields(draft, customer)
        problems = sorted(facts(text) - allowed_facts(customer))
    except ValueError as err:
        text, problems = "", [str(err)]
    if choice.finish_reason != "stop":
        problems.append(f"the draft was cut off ({choice.finish_reason})")
    if problems or not draft.strip():
        return PersonalMessage(customer.id, fill_merge_fields(FALLBACK_TEMPLATE, customer), "fallback",
                               problems or ["the draft is empty"], completion.usage)
    return PersonalMessage(customer.id, text, "model", [], completion.usage)
    ### END SOLUTION


def cost_per_1000(messages: list[PersonalMessage], model: str = PERSONAL_MODEL) -> float:
    """What 1,000 such messages cost, in USD: the mean cost of these (from their usage) times 1,000."""
    prices = [cost(m.usage, model).total_usd for m in messages]
    return math.fsum(prices) * CONTRACT.per_messages / len(prices)
