"""Every model the course uses, named once, by the role it plays.

Notebooks, exercises, solutions, cassette sources and checks read these names; none of them
spells a model id. Moving the course to a new line-up is a change here plus ``make cassettes
notebooks``. ``labkit.catalog`` knows each model's prices, limits and lifecycle.
"""

from __future__ import annotations

#: A fast, cheap sampling model: first calls, support replies, classification at volume.
FAST = "gpt-4.1-mini"
#: The best sampling model: creative copy, the premium tier.
FLAGSHIP = "gpt-4.1"
#: Another model to fall back to when the first is unavailable.
BACKUP = "gpt-4o"
#: A reasoning model for exact, multi-step work.
REASONING = "o3"
#: A fast, cheap reasoning model whose effort goes down to "minimal": a product's entry tier,
#: the light stages of a pipeline (takes reasoning_effort, never temperature).
REASONING_FAST = "gpt-5-mini"
#: The flagship of REASONING_FAST's family: a product's paid tiers, the stage that writes.
REASONING_FLAGSHIP = "gpt-5"

#: The models the lesson itself names, kept to show what the API answers when they are used
#: as the lesson wrote them (labelled demonstrations, never the course's own choice).
LESSON_SMALL = "gpt-5-mini"
LESSON_FLAGSHIP = "gpt-5"
LESSON_REASONING = "o1"

#: The course's own choices, by role: `labkit doctor` fails when one of these is shut down or
#: within 60 days of its shutdown date (the lesson's models above are retired on purpose).
ROLES = {"fast": FAST, "flagship": FLAGSHIP, "backup": BACKUP, "reasoning": REASONING}
#: The lesson's models, by what the lesson used them for.
LESSON = {"small": LESSON_SMALL, "flagship": LESSON_FLAGSHIP, "reasoning": LESSON_REASONING}
