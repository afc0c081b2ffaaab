"""Exercise 10, an alternative: conditional-tuple review reasons, a walrus poll loop, splitlines results,
evaluate_routing on a thread pool, re.split merge fields, functools.reduce logprob sums.

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

import concurrent.futures
import functools
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
    ### BEGIN SOLUTION: assemble the context of a draft
    ### TODO: a developer message with SUPPORT_INSTRUCTIONS, the knowledge base (kb_text(): every
    ### article with its id) and the customer's record (history_text(customer): plan and every past
    ### issue); then the ticket as the user message, verbatim and fenced (ticket_text(ticket)).
    context = f"{SUPPORT_INSTRUCTIONS}\n\nKnowledge base:\n{kb_text()}\n\n{history_text(customer)}"
    return [{"role": "developer", "content": context}, {"role": "user", "content": ticket_text(ticket)}]
    ### END SOLUTION


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
        return [f"no draft (refusal): {draft.reason}"]
    cited = [s for s in draft.sources if s in KB]
    supported = functools.reduce(set.union, [claims(KB[s].text) for s in cited], claims(history_text(customer)) | claims(ticket.text))
    checks = [
        (draft.needs_human, "needs a human"),
        (draft.confidence < CONTRACT.min_confidence, "not confident enough"),
        (bool(sensitive_terms_in(ticket.text)), "the ticket is policy-sensitive"),
        (bool(sensitive_terms_in(draft.answer)), "the answer is policy-sensitive"),
        (any(s in CONTRACT.sensitive_articles for s in draft.sources), "cites a policy article"),
        (len(cited) != len(draft.sources), "cites an article not in the knowledge base"),
        (not claims(draft.answer) <= supported, "makes claims its sources do not support"),
    ]
    return [reason for failed, reason in checks if failed]


def handle_ticket(client: OpenAI, desk: SupportDesk, ticket: Ticket, customer: Customer) -> str:
    """Draft a reply, then send it (CONTRACT.route_sent) or hold it for review (CONTRACT.route_review)."""
    ### BEGIN SOLUTION: send or hold
    ### TODO: draft = draft_reply(...); reasons = review_reasons(...). With reasons (or a Refusal):
    ### desk.hold(ticket, customer, draft, reasons) and return CONTRACT.route_review; otherwise
    ### desk.send(ticket, customer, draft) and return CONTRACT.route_sent. Never both.
    draft = draft_reply(client, ticket, customer)
    reasons = review_reasons(ticket, customer, draft)
    if reasons or isinstance(draft, Refusal):
        desk.hold(ticket, customer, draft, reasons)
        return CONTRACT.route_review
    desk.send(ticket, customer, draft)
    return CONTRACT.route_sent
    ### END SOLUTION


# =========================================================================== 2. lead extraction


def ground_lead(lead: Lead, text: str) -> Lead:
    """A copy of ``lead`` where every value the text does not state (appears_in) is None."""
    ### BEGIN SOLUTION: keep only what the text says
    ### TODO: for each field of the lead, keep the value if it is None or appears_in(value, text,
    ### field_name) (a phone number is compared by its digits); otherwise None. Return a new Lead.
    values = lead.model_dump()
    return Lead(**{name: v if v is None or appears_in(v, text, name) else None for name, v in values.items()})
    ### END SOLUTION


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
    ### BEGIN SOLUTION: write the batch input file
    ### TODO: for each product write json.dumps({"custom_id": product.sku, "method": "POST",
    ### "url": CONTRACT.batch_endpoint, "body": content_body(product)}) and a "\n" (UTF-8). The
    ### body carries the per-item budget (max_output_tokens). Return the path.
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for product in products:
            line = {"custom_id": product.sku, "method": "POST", "url": CONTRACT.batch_endpoint, "body": content_body(product)}
            f.write(json.dumps(line) + "\n")
    return path
    ### END SOLUTION


def submit_batch(client: OpenAI, path: str | Path) -> Batch:
    """Upload the file (purpose "batch") and create its batch on CONTRACT.batch_endpoint, 24-hour window."""
    ### BEGIN SOLUTION: upload and create
    ### TODO: client.files.create(file=<the file, opened "rb">, purpose="batch"), then
    ### client.batches.create(input_file_id=..., endpoint=CONTRACT.batch_endpoint,
    ### completion_window=CONTRACT.completion_window). Return the batch.
    with Path(path).open("rb") as f:
        uploaded = client.files.create(file=f, purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint=CONTRACT.batch_endpoint,
                                 completion_window=CONTRACT.completion_window)
    ### END SOLUTION


def wait_for_batch(client: OpenAI, batch_id: str, *, sleep: Any = time.sleep, poll_seconds: float = CONTRACT.poll_seconds) -> Batch:
    """Poll the batch until its status is terminal (CONTRACT.terminal); wait with ``sleep`` between polls."""
    while (batch := client.batches.retrieve(batch_id)).status not in CONTRACT.terminal:
        sleep(poll_seconds)
    return batch


def read_results(client: OpenAI, batch: Batch) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The batch's answers by custom_id: (response bodies of the successes, failures as {"status", "error"})."""
    ok: dict[str, dict[str, Any]] = {}
    failed: dict[str, dict[str, Any]] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id is None:
            continue
        for line in client.files.content(file_id).text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            response = row.get("response")
            status = response["status_code"] if response else None
            if status == 200:
                ok[row["custom_id"]] = response["body"]
                continue
            body_error = response["body"].get("error") if response and isinstance(response.get("body"), dict) else None
            failed[row["custom_id"]] = {"status": status, "error": row.get("error") or body_error}
    return ok, failed


def run_content_batch(client: OpenAI, products: list[Product], folder: str | Path, *, sleep: Any = time.sleep,
                      poll_seconds: float = CONTRACT.poll_seconds) -> ContentRun:
    """Describe every product through the Batch API, sending what failed (if worth it) again in a new batch."""
    ### BEGIN SOLUTION: the whole lifecycle, with retries
    ### TODO: up to CONTRACT.max_batches rounds while products are left: write_batch_file(left,
    ### folder / f"content-{round}.jsonl"), submit_batch, wait_for_batch(..., sleep=sleep,
    ### poll_seconds=poll_seconds), read_results; keep run.batch_ids. For each product left:
    ### - answered (ok) and complete (body["status"] == "completed"): run.texts[sku] = output_text(body),
    ###   its body["usage"] in run.usages, and no failure for it;
    ### - answered but incomplete (cut off at the budget): a final failure (its usage is billed too);
    ### - failed with a status in CONTRACT.retry_statuses, or an error code in CONTRACT.unrun_codes:
    ###   note the failure and send it again next round;
    ### - any other failure, or no line at all (a batch that failed validation): a final failure.
    ### run.failures[sku] says what happened; a product answered in a later round has none.
    run = ContentRun()
    left = list(products)
    while left and len(run.batch_ids) < CONTRACT.max_batches:
        path = write_batch_file(left, Path(folder) / f"content-{len(run.batch_ids) + 1}.jsonl")
        batch = wait_for_batch(client, submit_batch(client, path).id, sleep=sleep, poll_seconds=poll_seconds)
        run.batch_ids.append(batch.id)
        ok, failed = read_results(client, batch)
        again = []
        for product in left:
            sku = product.sku
            if sku in ok:
                body = ok[sku]
                run.usages.append(body["usage"])
                if body.get("status") == "completed":
                    run.texts[sku] = output_text(body) or ""
                    run.failures.pop(sku, None)
                else:
                    run.failures[sku] = f"{body['status']}: {body['incomplete_details']}"
            elif sku in failed:
                status, error = failed[sku]["status"], failed[sku]["error"] or {}
                run.failures[sku] = f"{status} {error}"
                if status in CONTRACT.retry_statuses or error.get("code") in CONTRACT.unrun_codes:
                    again.append(product)
            else:  # no line at all: the batch failed validation
                run.failures[sku] = f"batch {batch.status}: {batch.errors}"
        left = again
    return run
    ### END SOLUTION


def batch_cost(run: ContentRun, model: str = CONTENT_MODEL) -> tuple[float, float]:
    """(what the run's answers cost at Batch API prices, what the same answers cost sent one by one), in USD."""
    ### BEGIN SOLUTION: price the usage, both ways
    ### TODO: sum labkit.costs.cost(usage, model, tier="batch").total_usd over run.usages, and the
    ### same with the default tier.
    batch = sum(cost(usage, model, tier="batch").total_usd for usage in run.usages)
    standard = sum(cost(usage, model).total_usd for usage in run.usages)
    return batch, standard
    ### END SOLUTION


# =========================================================================== 4. routing


def confidence(completion: Any) -> float:
    """The probability of the least certain label of a classification answered with logprobs (0.0 without them)."""
    choice = completion.choices[0]
    tokens = choice.logprobs.content if choice.logprobs is not None else None
    if not tokens:
        return 0.0
    spans = label_spans(choice.message.content or "")
    starts = functools.reduce(lambda acc, tok: [*acc, acc[-1] + len(tok.bytes or [])], tokens, [0])

    def label_probability(span: tuple[int, int]) -> float:
        lo, hi = span
        return math.exp(sum(tok.logprob for tok, a, b in zip(tokens, starts, starts[1:]) if a < hi and b > lo))

    return min(map(label_probability, spans.values()))


def route_email(client: OpenAI, email: dict[str, Any]) -> Routed:
    """Lesson 05's classifier on the small model; the large model only when the small one is unsure or fails."""
    ### BEGIN SOLUTION: route by confidence
    ### TODO: small = client.chat.completions.parse(**{**request_for(email), "logprobs": True}) (lesson
    ### 05's request, unchanged but for logprobs, which effort "none" allows). Its parsed answer
    ### stands when confidence(small) >= CONTRACT.escalate_below. Otherwise (unsure, refused, or
    ### the small call raised an openai error) send the same request with "model": LARGE_MODEL and
    ### keep its answer. Return Routed(email id, classification, model used, the small model's
    ### confidence (0.0 if it failed), escalated, reason, usages: every answer's (model, usage),
    ### a cut-off one included: openai.LengthFinishReasonError carries it in err.completion.usage).
    usages: list[tuple[str, Any]] = []
    score = 0.0
    try:
        small = client.chat.completions.parse(**{**request_for(email), "logprobs": True})
    except openai.LengthFinishReasonError as err:  # cut off: billed all the same
        usages.append((SMALL_MODEL, err.completion.usage))
        reason = "the small model's answer was cut off"
    except openai.OpenAIError as err:
        reason = f"the small model failed: {type(err).__name__}"
    else:
        usages.append((SMALL_MODEL, small.usage))
        parsed = small.choices[0].message.parsed
        score = confidence(small) if parsed is not None else 0.0
        if parsed is not None and score >= CONTRACT.escalate_below:
            return Routed(email["id"], parsed, SMALL_MODEL, score, False, usages=usages)
        reason = "the small model refused" if parsed is None else f"confidence {score:.3f} < {CONTRACT.escalate_below}"
    large = client.chat.completions.parse(**{**request_for(email), "model": LARGE_MODEL})
    usages.append((LARGE_MODEL, large.usage))
    return Routed(email["id"], large.choices[0].message.parsed, LARGE_MODEL, score, True, reason, usages)
    ### END SOLUTION


def evaluate_routing(client: OpenAI, emails: list[dict[str, Any]]) -> RoutingReport:
    """Routing against always using the large model, on labelled emails: accuracy and cost of each."""
    def large_only(email: dict[str, Any]) -> Any:
        return client.chat.completions.parse(**{**request_for(email), "model": LARGE_MODEL})

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        routed = list(pool.map(lambda e: route_email(client, e), emails))
        baseline = list(pool.map(large_only, emails))
    n = len(emails)
    routed_right = [correct(r.classification, e) for r, e in zip(routed, emails)]
    large_right = [correct(b.choices[0].message.parsed, e) for b, e in zip(baseline, emails)]
    return RoutingReport(emails=n, escalated=[r.escalated for r in routed].count(True),
                         routed_accuracy=routed_right.count(True) / n, large_accuracy=large_right.count(True) / n,
                         routed_usd=sum(cost(u, m).total_usd for r in routed for m, u in r.usages),
                         large_usd=sum(cost(b.usage, LARGE_MODEL).total_usd for b in baseline))


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
    pieces = re.split(r"\{([^{}]*)\}", draft)  # text, name, text, name, ..., text
    for k in range(1, len(pieces), 2):
        if pieces[k] not in CONTRACT.merge_fields:
            raise ValueError(f"the draft has an unknown placeholder {{{pieces[k]}}}")
        pieces[k] = str(record[pieces[k]])
    return "".join(pieces)


def personalize(client: OpenAI, customer: Customer) -> PersonalMessage:
    """One customer's message: the model's draft filled from their record, or the fallback when it cannot be trusted."""
    completion = client.chat.completions.create(**personal_request(customer))
    choice = completion.choices[0]
    problems: list[str] = []
    text = ""
    if choice.finish_reason != "stop":
        problems.append(f"cut off: finish_reason={choice.finish_reason}")
    if not (choice.message.content or "").strip():
        problems.append("empty draft")
    else:
        try:
            text = fill_merge_fields(choice.message.content or "", customer)
        except ValueError as bad:
            problems.append(str(bad))
        else:
            problems.extend(sorted(facts(text) - allowed_facts(customer)))
    if problems:
        return PersonalMessage(customer.id, fill_merge_fields(FALLBACK_TEMPLATE, customer), "fallback", problems, completion.usage)
    return PersonalMessage(customer.id, text, "model", [], completion.usage)


def cost_per_1000(messages: list[PersonalMessage], model: str = PERSONAL_MODEL) -> float:
    """What 1,000 such messages cost, in USD: the mean cost of these (from their usage) times 1,000."""
    ### BEGIN SOLUTION: price from usage
    ### TODO: labkit.costs.cost(message.usage, model).total_usd prices each answer (cached tokens and
    ### cache writes apart, reasoning as output); average them and scale to CONTRACT.per_messages.
    total = sum(cost(message.usage, model).total_usd for message in messages)
    return total / len(messages) * CONTRACT.per_messages
    ### END SOLUTION
