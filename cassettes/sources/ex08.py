"""Exercise 08 and notebook 08: streams in time, headlines, onboarding emails, a background job and a chat (authored).

Every streamed answer keeps when each of its events arrives (``timed=True``: offsets derived from
the latency model in labkit/authoring.py, so a fast model at effort "none" shows its first token
after about a quarter of a second and the reasoning model at high effort after seconds of silence).
Requests are built by labkit/course/ex08.py exactly as the exercise sends them; the answer text of
each question is the same in both APIs and streamed or not, as the real API would give the same
answer to the same question (the course cannot show sampling variation offline). Three streams fail
midway, as the API sends such failures: an ``error`` event, a ``response.failed`` event, and a Chat
Completions error chunk.
"""


import json
from typing import Any

import openai

from labkit.course.ex08 import (
    BACKGROUND_PROMPT,
    CHAT_LONG,
    CHAT_SCRIPT,
    CUSTOMERS,
    DEEP_MODEL,
    FAILING_QUESTIONS,
    LATENCY_SETUPS,
    MODEL,
    PRODUCTS,
    QUESTION,
    RELAY_MESSAGES,
    answer_request,
    background_request,
    chat_turn_request,
    headline_request,
    lesson_headline_request,
    onboarding_request,
    setup_request,
    stream_request,
)
from labkit.simulate import api_error_for

ANSWER = (
    "Streaming shows the first words as soon as the model produces them, usually within a few hundred "
    "milliseconds, instead of after the whole answer is written. Reading starts at once, so a reply that "
    "takes four seconds to finish feels almost instant, and people can stop a wrong answer early.\n\n"
    "It does not make the answer itself arrive sooner: total time is the same, and it adds work for "
    "your server, which must relay events and handle clients that leave midway.\n\n"
    "Streaming helps little when nobody reads along: a batch job, a short classification, or structured "
    "output that your code can only use once it is complete."
)

FAILING_START = (
    "Moving a board keeps its cards, comments and history. Open the board, choose Settings, then Move board, "
    "and pick the target workspace. Members of the old workspace who are not in the new one lose access, so "
    "invite them first. Automations that point at other boards"
)

DEEP_ANSWER = (
    "The most likely causes, from most to least likely:\n\n"
    "1. Onboarding load. For two or three sprints, experienced people spend hours pairing with the new "
    "members, so the team's output drops before it rises.\n"
    "2. Coordination cost. Going from five to seven people adds eleven new pairs who need to stay in sync; "
    "standups and reviews grow longer.\n"
    "3. Estimation drift. New members estimate differently, so story points stop meaning the same thing and "
    "velocity is no longer comparable across the change.\n"
    "4. Work in progress. More people often start more cards at once; check whether cards now wait longer in "
    "review.\n\n"
    "Look at cycle time per card and at work in progress before and after the change: if cycle time is "
    "stable and only points fell, it is estimation, not speed."
)

LONG_ANSWER = (
    "Here is a setup that works well for a ten-person design agency.\n\n"
    "First, create one workspace for the agency and invite everyone with their work email. Give the two "
    "project leads the Admin role and everyone else Member.\n\n"
    "Second, make one board per client project from the Agency Project template. Its columns are Brief, "
    "Concepts, Client review, Revisions, Final files and Done, which follow how design work actually moves. "
    "Add a Client review column limit of three so reviews do not pile up.\n\n"
    "Third, add the custom fields you will filter on: client, deliverable type, due date and hours "
    "estimated. Turn on time tracking if you bill by the hour.\n\n"
    "Fourth, set two automations: when a card enters Client review, assign the project lead; when a card "
    "has been in Revisions for five days, post a reminder in the project channel.\n\n"
    "Fifth, create a Studio overview board that links the key card of every project, so the studio "
    "manager sees every deadline on one timeline view.\n\n"
    "Finally, invite clients as guests to their own project board only, with comment access, so feedback "
    "lands on the card instead of in email. Review the setup with the team after two weeks and remove any "
    "column nobody uses."
)

SHORT_ANSWER = ("A Kanban board shows work as cards moving through columns such as To do, Doing and Done, so a team "
                "sees at a glance what is in progress and where work piles up.")

SETUP_ANSWERS = {"low": ANSWER, "high": ANSWER}

HEADLINES = (
    ["Ship Projects 30% Faster with TaskFlow Pro", "TaskFlow Pro: Deadlines Met, Teams Happier",
     "Tech PMs Deliver Sooner with TaskFlow Pro"],
    ["Close Your Books in Two Days with Ledgerly", "Ledgerly Turns Month-End into Two Days",
     "Growing Startups Close Faster on Ledgerly"],
    ["Vet Advice in Five Minutes with Pawpal", "New Dog? Pawpal Answers in Minutes",
     "Pawpal: Expert Help for First-Time Owners"],
    ["O'Brien's Best Planner Never Loses a Deadline", "Teachers Stay on Schedule with O'Brien's",
     "The Planner That Keeps Every School Deadline"],
    ["Tâches Zéro Plans Your Week in Any Language", "One Planner for Every Language Your Team Speaks",
     "Multilingual Teams Plan Together with Tâches Zéro"],
    ["A Product Name That Asks Too Much", "Headlines Need a Real Product Benefit",
     "Tell Us What Your Product Does Best"],
)

ONBOARDING = (
    "Hi Amara,\n\nWelcome to Taskflow, and thank you for choosing the Team plan for Brightlane Studio.\n\n"
    "Three steps to get your first client project moving:\n\n1. Create a board from the Agency Project template; "
    "its columns follow a brief through design, development and client review.\n2. Invite your designers and "
    "developers, and give each card one owner so nothing waits on the wrong person.\n3. Turn on the timeline view "
    "to see every client deadline in one place.\n\nIf anything is unclear, reply to this email: a person on our "
    "team reads every reply.\n\nThe Taskflow team",
    "Hi Jonas,\n\nWelcome to Taskflow, and thank you for choosing the Business plan for Kraftwerk IT.\n\n"
    "Three steps to start tracking service requests and upgrades:\n\n1. Create an IT Requests board with the "
    "intake form, so colleagues file requests without an account.\n2. Add a Quarterly Upgrades board and use "
    "dependencies to order the infrastructure work.\n3. Set up single sign-on in the admin console; the Business "
    "plan includes it.\n\nIf anything is unclear, reply to this email: a person on our team reads every reply.\n\n"
    "The Taskflow team",
    "Hi Lucía,\n\nWelcome to Taskflow, and thank you for bringing Huerta Viva's volunteers on board.\n\n"
    "Three steps to organise your garden shifts:\n\n1. Create a Shifts board with one column per week and one "
    "card per shift.\n2. Share the board's sign-up link so volunteers add themselves to a card, no account "
    "needed.\n3. Turn on due-date reminders so everyone gets a note the day before their shift.\n\nThe Free "
    "plan covers all of this. If anything is unclear, reply to this email: a person on our team reads every "
    "reply.\n\nThe Taskflow team",
)

BACKGROUND_ANSWER = (
    "Launch plan: the Gantt view\n\nAudience: existing Team and Business customers who run projects with "
    "dates and dependencies, and trial users coming from spreadsheet plans.\n\nChannels: an in-app tour on "
    "first open, a short video, a changelog post, an email to admins of accounts with dated cards, and a "
    "webinar two weeks after launch.\n\nTimeline: week -4 beta with twenty customers; week -2 fix the top "
    "issues and record the video; week 0 release to all paid plans with the tour and email; week +2 webinar; "
    "week +4 review adoption.\n\nRisks: slow rendering on very large boards (cap at 2,000 cards in the "
    "beta); confusion with the existing timeline view (explain the difference in the tour); support load "
    "in launch week (prepare five help articles)."
)

CHAT_REPLIES = (
    "Start with the Board view: one column per stage, for example Ideas, In progress, Review and Published, "
    "and one card per campaign asset. A five-person marketing team sees everyone's work at a glance, and you "
    "can add the Calendar view later for launch dates.",
    "Invite the freelancer as a guest to that one board: open the board, choose Share, enter their email and "
    "pick Guest. Guests see only the boards they are invited to, never the rest of your workspace, and you "
    "can remove their access from the same menu when the project ends.",
    "Which view or board do you mean? Tell me what you would like to share and with whom, and I will walk "
    "you through it.",
)


def _events(stream: Any) -> list[Any]:
    """Consume a stream; a failure midway (the chat error chunk) is caught, as the app would."""
    try:
        return list(stream)
    except openai.APIError as err:
        return [err]


def build(a) -> None:
    build_streams(a)
    build_headlines(a)
    build_relay(a)
    build_webhooks(a)
    build_chat(a)


def build_streams(a) -> None:
    """The question in both APIs, plain and streamed; failing streams; the latency comparison."""
    a.call(lambda c: c.responses.create(**answer_request(QUESTION)), ANSWER, label="the question, Responses API")
    a.call(lambda c: c.responses.create(**answer_request(QUESTION), stream=True), ANSWER, timed=True,
           label="the question, Responses API, streamed")
    a.call(lambda c: c.chat.completions.create(**answer_request(QUESTION, "chat")), ANSWER, label="the question, Chat Completions")
    a.call(lambda c: c.chat.completions.create(**answer_request(QUESTION, "chat"), stream=True,
                                               stream_options={"include_usage": True}),
           ANSWER, timed=True, label="the question, Chat Completions, streamed with usage")
    for kind, event in (("error", "error"), ("response.failed", "response.failed")):
        question = FAILING_QUESTIONS[kind]
        a.call(lambda c, q=question: c.responses.create(**answer_request(q), stream=True), FAILING_START + " stay linked.",
               timed=True, stream_error={"after": 12, "event": event, "code": "server_error",
                                         "message": "The server had an error while processing your request. Sorry about that!"},
               label=f"a Responses stream that fails midway with {'an' if event == 'error' else 'a'} {event} event")
    question = FAILING_QUESTIONS["chat"]
    a.call(lambda c: _events(c.chat.completions.create(**answer_request(question, "chat"), stream=True,
                                                       stream_options={"include_usage": True})),
           FAILING_START + " stay linked.", timed=True,
           stream_error={"after": 12, "code": "server_error",
                         "message": "The server had an error while processing your request. Sorry about that!"},
           label="a Chat Completions stream that fails midway with an error chunk")
    for _name, model, effort in LATENCY_SETUPS:
        if model == MODEL:
            continue  # the same request as the question's stream above
        reply = DEEP_ANSWER if model == DEEP_MODEL else ANSWER
        a.call(lambda c, m=model, e=effort: c.responses.create(**setup_request(m, e, "What slows a sprint down after new people join?"
                                                                                 if m == DEEP_MODEL else QUESTION)),
               reply, timed=True, label=f"latency comparison: {model} at effort {effort}, streamed")


def build_headlines(a) -> None:
    """Headlines for every product through both APIs (Structured Outputs), and the lesson's request as written."""
    for product, headlines in zip(PRODUCTS, HEADLINES):
        reply = json.dumps({"headlines": headlines}, ensure_ascii=False)
        for api in ("responses", "chat"):
            request = headline_request(**product, api=api)
            call = (lambda c, r=request: c.responses.parse(**r)) if api == "responses" else (lambda c, r=request: c.chat.completions.parse(**r))
            a.call(call, reply, label=f"headlines for {product['product_name']!r} ({api})")
    request = lesson_headline_request(PRODUCTS[0])
    a.call(lambda c: c.chat.completions.create(**request), error=api_error_for(request),
           label="the lesson's Example 2 request, as written (the error the API gives on the course date; authored)")


def build_relay(a) -> None:
    """The SSE endpoint's upstream streams: short, long, deep (seconds of silence first) and two that fail."""
    replies = {"short": SHORT_ANSWER, "long": LONG_ANSWER, "deep": DEEP_ANSWER}
    for kind, reply in replies.items():
        message = RELAY_MESSAGES[kind]
        a.call(lambda c, m=message, d=(kind == "deep"): c.responses.create(**stream_request(m, d)), reply, timed=True,
               label=f"relay: the {kind} answer, streamed")


def build_webhooks(a) -> None:
    """Onboarding emails (the signup webhook's work) and a background response with its retrieval."""
    for customer, body in zip(CUSTOMERS, ONBOARDING):
        a.call(lambda c, cu=customer: c.responses.create(**onboarding_request(cu)), body,
               label=f"onboarding email for {customer['name']}")
    request = background_request(BACKGROUND_PROMPT)
    queued = a.call(lambda c: c.responses.create(**request), BACKGROUND_ANSWER,
                    label="a background response: queued at once (its webhook comes when it is done)")
    a.call(lambda c: c.responses.retrieve(queued.id), BACKGROUND_ANSWER, data={"request": request, "id": queued.id},
           label="the background response retrieved after its response.completed webhook")


def build_chat(a) -> None:
    """The chat: conversations for three connections, then their turns (Conversations API and previous_response_id)."""
    convs = [a.call(lambda c: c.conversations.create(), label=f"chat connection {i + 1}: a new conversation").id
             for i in range(3)]
    first, second = CHAT_SCRIPT
    a.call(lambda c: c.responses.create(**chat_turn_request(first, conversation=convs[0])), CHAT_REPLIES[0], timed=True,
           label="chat connection 1, turn 1 (conversation)")
    context = [{"role": "user", "content": first}, {"role": "assistant", "content": CHAT_REPLIES[0]}]
    a.call(lambda c: c.responses.create(**chat_turn_request(second, conversation=convs[0])), CHAT_REPLIES[1], timed=True,
           context=context, label="chat connection 1, turn 2: the conversation holds turn 1")
    a.call(lambda c: c.responses.create(**chat_turn_request(second, conversation=convs[1])), CHAT_REPLIES[2], timed=True,
           label="chat connection 2: the same question in a new conversation, which knows nothing of turn 1")
    a.call(lambda c: c.responses.create(**chat_turn_request(first, conversation=convs[1])), CHAT_REPLIES[0], timed=True,
           label="chat connection 2, asked the first question (the chat page after a script's connection)")
    a.call(lambda c: c.responses.create(**chat_turn_request(CHAT_LONG, conversation=convs[2])), LONG_ANSWER, timed=True,
           label="chat connection 3: a long answer (a client that leaves midway)")
    a.call(lambda c: c.responses.create(**chat_turn_request(CHAT_LONG, conversation=convs[0])), LONG_ANSWER, timed=True,
           label="chat connection 1, asked for the long answer first (a client that leaves midway)")
    # the same chat chained with previous_response_id instead of a conversation
    events = a.call(lambda c: c.responses.create(**chat_turn_request(first)), CHAT_REPLIES[0], timed=True,
                    label="chat turn 1 (previous_response_id style)")
    first_id = next(e.response.id for e in events if e.type == "response.completed")
    a.call(lambda c: c.responses.create(**chat_turn_request(second, previous_response_id=first_id)), CHAT_REPLIES[1],
           timed=True, context=context, label="chat turn 2 chained to turn 1 with previous_response_id")
    a.call(lambda c: c.responses.create(**chat_turn_request(second)), CHAT_REPLIES[2], timed=True,
           label="the second question alone (previous_response_id style, a new connection)")
    a.call(lambda c: c.responses.create(**chat_turn_request(CHAT_LONG)), LONG_ANSWER, timed=True,
           label="a long chat answer (previous_response_id style)")
