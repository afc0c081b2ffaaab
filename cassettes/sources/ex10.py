"""Notebook 10: support drafts, lead extraction, a content batch's whole lifecycle and personalized messages (authored answers).

Each template runs the reference solution (``solutions/ex10_production.py``) through the real SDK,
so every recorded request is exactly what it sends. Support drafts and lead extractions are
authored per ticket and per text (one lead answer invents values the text does not state, as
models do: the grounding step must null them). The batch is served by the Batch API's state
machine (``labkit/endpoints/batches.py``) on a virtual clock: statuses, counts, timestamps, file
sizes and ids are derived; one product's request fails with a 500 in the first batch and is sent
again in the second; one description runs past its output budget and comes back incomplete.
Personalized drafts use ``cache="auto"``: each request reads from the cache the prefix it shares
with an earlier one (every customer's request starts with the same ~1,300 tokens). Routing's
classifications are in ``ex10_routing.py``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from labkit.authoring import AUTHORED_AT
from labkit.checks import load_learner_module
from labkit.clock import Clock
from labkit.course import ex10 as course
from labkit.endpoints.batches import renderer_answer
from labkit.paths import solutions_dir
from labkit.simulate import api_error_for

sol = load_learner_module(solutions_dir() / "ex10_production.py")

# --------------------------------------------------------------------------- 1. support drafts


def draft(answer: str, confidence: float, needs_human: bool, priority: str, actions: list[str], sources: list[str]) -> str:
    return json.dumps({"answer": answer, "confidence": confidence, "needs_human": needs_human, "priority": priority,
                       "suggested_actions": actions, "sources": sources}, ensure_ascii=False)


#: What the support model drafts for each of course.TICKETS.
DRAFTS = {
    "T-1001": draft("Hi Ben, the second $80 charge is a temporary authorisation hold, not a second payment. Your bank "
                    "releases it within 3 business days; if it is still there after that, our billing team reverses it.",
                    0.91, False, "medium", ["Check the card statement again after 3 business days"], ["double-charge"]),
    "T-1002": draft("Hi Ana, open the project and choose Project > Export, then CSV or JSON. With about 12,000 tasks the "
                    "export is prepared in the background, and a download link reaches you by email within 15 minutes.",
                    0.94, False, "low", [], ["export"]),
    "T-1003": draft("Hi Chloé, annual plans can be refunded in full within 30 days of purchase, so your request is in time. "
                    "I have passed it to our billing team, who approve refunds; once approved, the money reaches your "
                    "card within 5-10 business days.",
                    0.86, True, "medium", ["Billing: approve the refund of the annual Team plan"], ["refunds"]),
    "T-1004": draft("Hi Emil, I have forwarded your DPA to our legal team, who sign contracts, and the deletion request to "
                    "our privacy team, which handles GDPR requests within 30 days. Support agents cannot delete data or "
                    "sign documents themselves.",
                    0.8, True, "high", ["Legal: review and sign the DPA", "Privacy: delete the user's data"], ["privacy"]),
    "T-1005": draft("Hi Fatima, sorry about the blank screen. Please update the app to the latest version, then sign out "
                    "and in again. For the trouble, I have added a free month to your account.",
                    0.78, False, "high", ["Follow up if the update does not help"], ["mobile"]),
    "T-1006": draft("Hi Jonas, yes: single sign-on with SAML works with Okta as well as Azure AD on your Business plan. "
                    "An admin can switch the identity provider in Settings > Security.",
                    0.9, False, "low", [], ["sso"]),
    "T-1007": draft("Hi Ben, our articles do not cover a connection to Sage 50, so I have asked a colleague to check what "
                    "is possible and get back to you.",
                    0.35, True, "low", ["Product team: is a Sage 50 export possible?"], []),
}


def build_support(a: Any) -> None:
    ticket = course.TICKETS[0]
    request = course.lesson_support_request(ticket, course.CUSTOMER[ticket.customer_id])
    a.call(lambda c: c.chat.completions.create(**request), error=api_error_for(request),
           label="template 1 as the lesson wrote it (the error the API gives on the course date; authored)")
    for ticket in course.TICKETS:
        customer = course.CUSTOMER[ticket.customer_id]
        a.call(lambda c, t=ticket, cu=customer: sol.draft_reply(c, t, cu), DRAFTS[ticket.id],
               label=f"support draft for {ticket.id} (authored)")


# --------------------------------------------------------------------------- 2. leads


def leads(*found: dict[str, str | None]) -> str:
    return json.dumps({"leads": [{name: lead.get(name) for name in course.LEAD_FIELDS} for lead in found]}, ensure_ascii=False)


def _labelled(case_id: str) -> list[dict[str, str | None]]:
    return [dict(lead) for lead in next(c for c in course.LEAD_CASES if c.id == case_id).leads]


def raw_leads() -> dict[str, tuple[str, str]]:
    """Each labelled text's raw answer, and where it departs from the label (the values it invents)."""
    two = _labelled("two-companies")
    two[1]["email"] = "mia.lang@contoso.example"  # invented: the text gives no address for her
    signature = _labelled("signature")
    signature[0].update(contact_person="Helix Robotik Sales Team", email="info@helix-robotik.example")  # both invented
    german = _labelled("german")
    german[0]["timeline"] = "May"  # translated: the text says "im Mai"
    return {
        "acme": (leads(*_labelled("acme")), ""),
        "two-companies": (leads(*two), " (invents Mia Lang's email address)"),
        "signature": (leads(*signature), " (invents a contact name and an email address)"),
        "german": (leads(*german), " (translates the timeline instead of copying it)"),
        "no-lead": (leads(), ""),
    }


def build_leads(a: Any) -> None:
    raw = raw_leads()
    for case in course.LEAD_CASES:
        reply, note = raw[case.id]
        a.call(lambda c, t=case.text: sol.extract_leads(c, t), reply, label=f"lead extraction: {case.id}{note} (authored)")


# --------------------------------------------------------------------------- 3. content at scale


#: The description of each product (the model's answer, 60 to 90 words).
DESCRIPTIONS = {
    "TP-200": "For two hikers who count every gram, the Ridgeline 2 is a three-season tent that weighs 1.9 kg. Two doors "
              "mean nobody climbs over anybody at night, and the aluminium poles pitch a taut, stable shape in minutes. "
              "It suits summer ridges, spring valleys and autumn forests alike, and packs small enough to share between "
              "two rucksacks.",
    "HL-050": "For early starts and late finishes, the Lumen 400 headlamp throws 400 lumens down the trail and weighs just "
              "62 g. The red night mode keeps your eyes adjusted in camp and spares your tent-mate, and USB-C charging "
              "means the same cable that charges your phone tops up the lamp between trips.",
    "WB-750": "For long, hot days on the trail, the Glacier bottle holds 750 ml in a double-wall steel body that keeps "
              "drinks cold for 24 hours. The outside stays dry, with no condensation soaking your pack, and the steel "
              "shrugs off knocks against rock. Fill it at breakfast and it is still cold when you reach the summit.",
    "JK-310": "For walkers who watch the sky, the Drizzle rain jacket is a 2.5-layer waterproof shell that keeps showers "
              "out. Pit zips let heat escape on the climbs, and when the sun returns it packs into its own pocket, small "
              "enough to live in your daypack all season. An easy choice for changeable weather and long days out.",
    "SK-090": "For hikers who feel every step, these merino hiking socks combine a merino wool blend with a cushioned "
              "sole. The wool handles warm afternoons and cool mornings, and the cushioning softens long descents. "
              "Available in sizes 36 to 47, they are made for multi-day walks as much as for an afternoon loop.",
    "PL-120": "For steep ground and long descents, this pair of carbon trekking poles adjusts from 120 to 135 cm and weighs "
              "410 g the pair. Cork grips stay comfortable in warm hands and cold ones, and the light carbon shafts take "
              "the strain off your knees without weighing down your pack when they ride on the outside.",
    "SB-015": "For cold nights in the mountains, this down sleeping bag is rated comfortable to -5 °C and weighs 850 g. "
              + " ".join(
                  f"On night {n} of a long traverse the 650-fill down still lofts high, trapping warmth close to the body, "
                  "and the compression sack squeezes the bag down so it rides easily in the bottom of a pack, leaving room "
                  "for food, fuel and the extra layers that shoulder-season trips demand."
                  for n in range(1, 9)),
    "ST-002": "For hot meals far from the car, the Pocket stove weighs 78 g and boils 1 litre in 3.5 minutes. Piezo "
              "ignition lights it with a click, so there are no matches to keep dry. It folds small enough for a jacket "
              "pocket and makes a morning coffee or an evening meal quick and simple.",
    "BP-038": "For full days in the hills, the Summit 38 backpack holds 38 litres with an adjustable back length that fits "
              "a wide range of torsos. Hip-belt pockets keep snacks and a phone within reach, and a rain cover tucks away "
              "until the clouds roll in. A dependable pack for day hikes and light overnights.",
    "GL-005": "For cool mornings and windy ridges, the Trail gloves are windproof with touchscreen fingertips, so maps and "
              "photos do not mean bare hands. A reflective logo helps you be seen on the road back at dusk. Light enough "
              "to wear all day and easy to stow when the sun comes out.",
    "MP-001": "For navigators who still trust paper, the Dry map case keeps an A4 map waterproof through rain and river "
              "crossings. The neck cord keeps it on hand and off the ground, and the clear window lets you read the "
              "route without unfolding anything in the wind.",
    "CH-220": "For long evenings at camp, the Camp chair holds 120 kg, weighs 890 g and folds to 35 cm. It sets up in "
              "seconds and gives tired legs a proper seat after a day on the trail, while packing small enough to carry "
              "on a short walk-in to your pitch.",
}
#: A request that fails with a server error in the first batch (sent again in the second).
FLAKY_SKU = "JK-310"
#: A description that runs past the per-item output budget (the answer comes back incomplete).
CUT_OFF_SKU = "SB-015"


def batch_answers() -> Any:
    """How the batch's lines are answered: rendered for their request, with the flaky and cut-off ones."""
    seen: dict[str, int] = {}

    def replies(custom_id: str, body: dict[str, Any]) -> Any:
        seen[custom_id] = seen.get(custom_id, 0) + 1
        if custom_id == FLAKY_SKU and seen[custom_id] == 1:
            return {"error": {"status": 500, "message": "The server had an error while processing your request. Sorry about that!",
                              "type": "server_error", "code": None}}
        return DESCRIPTIONS[custom_id]

    render = renderer_answer(replies, seed="ex10-batch")

    def answer(custom_id: str, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        status, payload, request_id = render(custom_id, url, body)
        if custom_id == CUT_OFF_SKU and status == 200:
            _cut_off(payload, int(body["max_output_tokens"]))
        return status, payload, request_id

    return answer


def _cut_off(response: dict[str, Any], limit: int) -> None:
    """An answer stopped by max_output_tokens: status incomplete, and the output budget spent to the last token."""
    response["status"] = "incomplete"
    response["incomplete_details"] = {"reason": "max_output_tokens"}
    for item in response["output"]:
        if item.get("type") == "message":
            item["status"] = "incomplete"
    usage = response["usage"]
    visible = usage["output_tokens"] - usage["output_tokens_details"]["reasoning_tokens"]
    usage["output_tokens_details"]["reasoning_tokens"] = max(0, limit - visible)
    usage["output_tokens"] = max(limit, visible)
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]


def build_batch(a: Any) -> None:
    clock = Clock(now=float(AUTHORED_AT))
    a.state["batch_now"] = clock
    a.state["batch_answer"] = batch_answers()
    folder = Path(tempfile.mkdtemp(prefix="ex10-source-"))
    a.each(lambda c: sol.run_content_batch(c, list(course.PRODUCTS), folder, sleep=clock.sleep),
           label="the content batch's lifecycle (Files and Batch APIs; statuses, counts and times derived)")


# --------------------------------------------------------------------------- 5. personalization


#: What the model drafts for each customer: placeholders for the facts about them.
PERSONAL_DRAFTS = {
    "cus-ana": "Hi {first_name},\n\nYour team already plans in {top_feature}; Timeline view now puts every one of those "
               "charts side by side on one zoomable line, with dependencies drawn as arrows.\n\nWhen two projects need the "
               "same people in the same week, the overlap is shaded, so clashes show before they happen. Open any "
               "project and choose View > Timeline.\n\nThe Taskflow team",
    "cus-ben": "Hi {first_name},\n\nTimeline view is now in every plan, your {plan} plan included. It shows all of "
               "your projects at {company} on one line, and on {top_feature} you can pinch the timeline to zoom.\n\nOpen any "
               "project and choose View > Timeline to try it.\n\nThe Taskflow team",
    "cus-chloe": "Hi {first_name},\n\nTimeline view shows every project of your workspace on one line, and {top_feature} "
                 "totals appear when the pointer rests on a bar, so you see where the hours went at a glance.\n\nOpen "
                 "any project and choose View > Timeline.\n\nThe Taskflow team",
    "cus-emil": "Hi {first_name},\n\nWith {seats} people in the {company} workspace, seeing every project at once is where "
                "planning starts. Timeline view puts them on one zoomable line and shades the weeks where two projects "
                "need the same people.\n\nOpen any project and choose View > Timeline to try it.\n\nThe Taskflow team",
    "cus-fatima": "Hi {first_name},\n\n{company} has planned with Taskflow since 2021, and Timeline view now shows your "
                  "{top_feature} as small ticks along each project's bar.\n\nOpen any project and choose View > Timeline."
                  "\n\nThe Taskflow team",
    "cus-jonas": "Hi {first_name},\n\nEach of your {top_feature} now shows its progress as a fill on its project's bar in "
                 "Timeline view, so the whole portfolio reads at a glance.\n\nOpen any project and choose View > "
                 "Timeline.\n\nThe Taskflow team",
}


def build_personal(a: Any) -> None:
    for customer in course.CUSTOMERS:
        note = " (invents a fact: the fallback is sent)" if "2021" in PERSONAL_DRAFTS[customer.id] else ""
        a.call(lambda c, cu=customer: sol.personalize(c, cu), PERSONAL_DRAFTS[customer.id], cache="auto",
               label=f"personalized draft for {customer.id}{note} (authored; cached tokens derived from the shared prefix)")


def build(a: Any) -> None:
    build_support(a)
    build_leads(a)
    build_batch(a)
    build_personal(a)
