"""Every model the course uses, named once, by the role it plays.

Notebooks, exercises, solutions, cassette sources and checks read these names; none of them
spells a model id. Moving the course to a new line-up is a change here plus ``make cassettes
notebooks``. ``labkit.catalog`` knows each model's prices, limits and lifecycle, and
``labkit doctor`` fails when a role's model is shut down or within 60 days of it.

The line-up of 1 December 2026: every current model is a reasoning model. Sampling parameters
(temperature, top_p, logprobs, penalties) are accepted only at reasoning effort ``"none"``, which
gpt-6-luna, gpt-6.1-terra and gpt-6-sol offer and gpt-6.1-sol and the gpt-6.2 models do not.
"""

from __future__ import annotations

#: The cheapest current model: first calls, classification at volume, short replies. Effort
#: "none" makes it a fast sampling model (temperature, and function tools in Chat Completions).
FAST = "gpt-6-luna"
#: The everyday model: good answers at a fair price. Effort "none" accepts temperature; function
#: tools need the Responses API.
DEFAULT = "gpt-6.1-terra"
#: Deep, exact multi-step work (efforts low to max; never sampling parameters).
REASONING = "gpt-6.2-sol"
#: The best quality, for a product's premium tier or copy that must shine (8x DEFAULT's price).
FLAGSHIP = "gpt-6.2-astra"
#: Another model to fall back to when the first is unavailable (a different generation).
BACKUP = "gpt-6-sol"

#: The models the lesson itself names, kept to show what the API answers when they are used
#: as the lesson wrote them (labelled demonstrations, never the course's own choice).
LESSON_SMALL = "gpt-5-mini"
LESSON_FLAGSHIP = "gpt-5"
LESSON_REASONING = "o1"

#: The course's own choices, by role: `labkit doctor` fails when one of these is shut down or
#: within 60 days of its shutdown date (the lesson's models above are retired on purpose).
ROLES = {"fast": FAST, "default": DEFAULT, "reasoning": REASONING, "flagship": FLAGSHIP, "backup": BACKUP}
#: The lesson's models, by what the lesson used them for.
LESSON = {"small": LESSON_SMALL, "flagship": LESSON_FLAGSHIP, "reasoning": LESSON_REASONING}
