"""Exercise 10: the lesson's five production templates, each graded on its success metrics.

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
from labkit.course.ex05 import FIELDS, Classification, request_for

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
    # TODO: a developer message with SUPPORT_INSTRUCTIONS, the knowledge base (kb_text(): every
    # article with its id) and the customer's record (history_text(customer): plan and every past
    # issue); then the ticket as the user message, verbatim and fenced (ticket_text(ticket)).
    raise NotImplementedError("assemble the context of a draft")


def draft_reply(client: OpenAI, ticket: Ticket, customer: Customer) -> SupportResponse | Refusal:
    """One Structured Outputs request: the parsed SupportResponse, or a Refusal if the model declines."""
    # TODO: client.responses.parse(model=SUPPORT_MODEL, input=support_input(ticket, customer),
    # text_format=SupportResponse, reasoning={"effort": SUPPORT_EFFORT},
    # max_output_tokens=SUPPORT_MAX_OUTPUT). A refusal arrives as a content part of type
    # "refusal" (output_parsed is then None): return Refusal(its text). Else return output_parsed.
    # (chat.completions.parse works too: there the refusal is message.refusal.)
    raise NotImplementedError("draft a structured reply")


def review_reasons(ticket: Ticket, customer: Customer, draft: SupportResponse | Refusal) -> list[str]:
    """Why a person must see this draft before the customer does; [] means it may be sent."""
    # TODO: one reason per rule of the contract (labkit/course/ex10.py, template 1):
    # a Refusal; draft.needs_human; draft.confidence < CONTRACT.min_confidence; sensitive terms
    # (sensitive_terms_in) in the ticket or the answer; a cited source in
    # CONTRACT.sensitive_articles; a cited source that is not in KB; claims(draft.answer) that
    # none of claims(KB[source].text) for the cited sources, claims(history_text(customer)) or
    # claims(ticket.text) contains.
    raise NotImplementedError("decide what goes to the review queue")


def handle_ticket(client: OpenAI, desk: SupportDesk, ticket: Ticket, customer: Customer) -> str:
    """Draft a reply, then send it (CONTRACT.route_sent) or hold it for review (CONTRACT.route_review)."""
    # TODO: draft = draft_reply(...); reasons = review_reasons(...). With reasons (or a Refusal):
    # desk.hold(ticket, customer, draft, reasons) and return CONTRACT.route_review; otherwise
    # desk.send(ticket, customer, draft) and return CONTRACT.route_sent. Never both.
    raise NotImplementedError("send or hold")


# =========================================================================== 2. lead extraction


def ground_lead(lead: Lead, text: str) -> Lead:
    """A copy of ``lead`` where every value the text does not state (appears_in) is None."""
    # TODO: for each field of the lead, keep the value if it is None or appears_in(value, text,
    # field_name) (a phone number is compared by its digits); otherwise None. Return a new Lead.
    raise NotImplementedError("keep only what the text says")


def extract_leads(client: OpenAI, text: str) -> list[Lead]:
    """Every lead in ``text`` (Structured Outputs, nullable fields), grounded in the text; [] if refused."""
    # TODO: client.chat.completions.parse(model=LEAD_MODEL, messages=lead_input(text),
    # response_format=LeadExtraction, reasoning_effort=LEAD_EFFORT, temperature=LEAD_TEMPERATURE,
    # max_completion_tokens=LEAD_MAX_OUTPUT). A refusal (message.refusal set, message.parsed None)
    # means no leads. Ground each lead with ground_lead, and drop a lead left with no value at all.
    raise NotImplementedError("extract, then ground")


# =========================================================================== 3. content at scale


def write_batch_file(products: list[Product], path: str | Path) -> Path:
    """One JSON Lines request per product: custom_id (its sku), method, url and body (content_body)."""
    # TODO: for each product write json.dumps({"custom_id": product.sku, "method": "POST",
    # "url": CONTRACT.batch_endpoint, "body": content_body(product)}) and a "\n" (UTF-8). The
    # body carries the per-item budget (max_output_tokens). Return the path.
    raise NotImplementedError("write the batch input file")


def submit_batch(client: OpenAI, path: str | Path) -> Batch:
    """Upload the file (purpose "batch") and create its batch on CONTRACT.batch_endpoint, 24-hour window."""
    # TODO: client.files.create(file=<the file, opened "rb">, purpose="batch"), then
    # client.batches.create(input_file_id=..., endpoint=CONTRACT.batch_endpoint,
    # completion_window=CONTRACT.completion_window). Return the batch.
    raise NotImplementedError("upload and create")


def wait_for_batch(client: OpenAI, batch_id: str, *, sleep: Any = time.sleep, poll_seconds: float = CONTRACT.poll_seconds) -> Batch:
    """Poll the batch until its status is terminal (CONTRACT.terminal); wait with ``sleep`` between polls."""
    # TODO: loop: batch = client.batches.retrieve(batch_id); return it when batch.status is in
    # CONTRACT.terminal; otherwise sleep(poll_seconds). Use the sleep you are given (the checks
    # pass a fake one), never time.sleep directly.
    raise NotImplementedError("poll")


def read_results(client: OpenAI, batch: Batch) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The batch's answers by custom_id: (response bodies of the successes, failures as {"status", "error"})."""
    # TODO: read client.files.content(file_id).text of batch.output_file_id and batch.error_file_id
    # (either may be None); each non-empty line is a JSON object with "custom_id", "response"
    # ({"status_code", "body"} or null) and "error". Status 200: ok[custom_id] = response["body"];
    # anything else: failed[custom_id] = {"status": the status code or None, "error": row["error"]
    # or the body's "error"}. Lines come in any order: key them by custom_id, never by position.
    raise NotImplementedError("download and match by custom_id")


def run_content_batch(client: OpenAI, products: list[Product], folder: str | Path, *, sleep: Any = time.sleep,
                      poll_seconds: float = CONTRACT.poll_seconds) -> ContentRun:
    """Describe every product through the Batch API, sending what failed (if worth it) again in a new batch."""
    # TODO: up to CONTRACT.max_batches rounds while products are left: write_batch_file(left,
    # folder / f"content-{round}.jsonl"), submit_batch, wait_for_batch(..., sleep=sleep,
    # poll_seconds=poll_seconds), read_results; keep run.batch_ids. For each product left:
    # - answered (ok) and complete (body["status"] == "completed"): run.texts[sku] = output_text(body),
    #   its body["usage"] in run.usages, and no failure for it;
    # - answered but incomplete (cut off at the budget): a final failure (its usage is billed too);
    # - failed with a status in CONTRACT.retry_statuses, or an error code in CONTRACT.unrun_codes:
    #   note the failure and send it again next round;
    # - any other failure, or no line at all (a batch that failed validation): a final failure.
    # run.failures[sku] says what happened; a product answered in a later round has none.
    raise NotImplementedError("the whole lifecycle, with retries")


def batch_cost(run: ContentRun, model: str = CONTENT_MODEL) -> tuple[float, float]:
    """(what the run's answers cost at Batch API prices, what the same answers cost sent one by one), in USD."""
    # TODO: sum labkit.costs.cost(usage, model, tier="batch").total_usd over run.usages, and the
    # same with the default tier.
    raise NotImplementedError("price the usage, both ways")


# =========================================================================== 4. routing


def confidence(completion: Any) -> float:
    """The probability of the least certain label of a classification answered with logprobs (0.0 without them)."""
    # TODO: content = the answer's text; spans = label_spans(content) gives each label's value as
    # a byte range. Walk choices[0].logprobs.content, keeping a byte position (len(token.bytes));
    # add each token's logprob to every label whose range it overlaps. A label's probability is
    # math.exp(its sum); return the smallest. No logprobs: 0.0.
    raise NotImplementedError("from token logprobs to a confidence")


def route_email(client: OpenAI, email: dict[str, Any]) -> Routed:
    """Lesson 05's classifier on the small model; the large model only when the small one is unsure or fails."""
    # TODO: small = client.chat.completions.parse(**{**request_for(email), "logprobs": True}) (lesson
    # 05's request, unchanged but for logprobs, which effort "none" allows). Its parsed answer
    # stands when confidence(small) >= CONTRACT.escalate_below. Otherwise (unsure, refused, or
    # the small call raised an openai error) send the same request with "model": LARGE_MODEL and
    # keep its answer. Return Routed(email id, classification, model used, the small model's
    # confidence (0.0 if it failed), escalated, reason, usages: every answer's (model, usage),
    # a cut-off one included: openai.LengthFinishReasonError carries it in err.completion.usage).
    raise NotImplementedError("route by confidence")


def evaluate_routing(client: OpenAI, emails: list[dict[str, Any]]) -> RoutingReport:
    """Routing against always using the large model, on labelled emails: accuracy and cost of each."""
    # TODO: route every email; separately, classify every email with the large model alone.
    # Accuracy: the share of emails whose classification is correct(...) (all three labels).
    # Cost: labkit.costs.cost(usage, model).total_usd summed over every answer (route_email's
    # usages, the escalations included; the large model's for the baseline).
    raise NotImplementedError("measure both policies")


# =========================================================================== 5. personalization


def personal_request(customer: Customer) -> dict[str, Any]:
    """One customer's draft request: what every customer shares first, their record last."""
    # TODO: messages = a developer message with PERSONAL_INSTRUCTIONS and style_guide() (identical
    # for every customer: more than 1,024 tokens the cache can reuse), then a user message with
    # json.dumps(campaign_record(customer)). Model PERSONAL_MODEL, reasoning_effort
    # PERSONAL_EFFORT, temperature PERSONAL_TEMPERATURE, max_completion_tokens PERSONAL_MAX_OUTPUT.
    raise NotImplementedError("a layout the prompt cache can serve")


def fill_merge_fields(draft: str, customer: Customer) -> str:
    """Replace each {field} of CONTRACT.merge_fields with the customer's value; any other {placeholder} raises ValueError."""
    # TODO: re.sub over r"\{([^{}]*)\}" with a function: a name in CONTRACT.merge_fields becomes
    # str(campaign_record(customer)[name]); any other name raises ValueError naming it. One pass:
    # a value that itself contains braces is inserted as it is, never filled again (not str.format).
    raise NotImplementedError("fill placeholders, in one pass")


def personalize(client: OpenAI, customer: Customer) -> PersonalMessage:
    """One customer's message: the model's draft filled from their record, or the fallback when it cannot be trusted."""
    # TODO: completion = client.chat.completions.create(**personal_request(customer)). Fill the
    # draft with fill_merge_fields; problems = sorted(facts(text) - allowed_facts(customer)), or
    # the ValueError of an unknown placeholder. With problems, an empty draft, or a draft cut off
    # (finish_reason != "stop"): PersonalMessage(id, fill_merge_fields(FALLBACK_TEMPLATE, customer),
    # "fallback", problems, usage). Otherwise PersonalMessage(id, text, "model", [], usage).
    raise NotImplementedError("draft, fill, check, fall back")


def cost_per_1000(messages: list[PersonalMessage], model: str = PERSONAL_MODEL) -> float:
    """What 1,000 such messages cost, in USD: the mean cost of these (from their usage) times 1,000."""
    # TODO: labkit.costs.cost(message.usage, model).total_usd prices each answer (cached tokens and
    # cache writes apart, reasoning as output); average them and scale to CONTRACT.per_messages.
    raise NotImplementedError("price from usage")

# labkit starter 911422532475 (made from solutions/ex10_production.py by `labkit exercises build`)
