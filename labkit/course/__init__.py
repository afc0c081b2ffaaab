"""The course's content, written once: one module per lesson, plus the models by role.

``labkit.course.exNN`` holds lesson NN's prompts, schemas, fixtures and data paths. Notebooks,
starters, solutions, cassette sources and checks all import them from here, so a prompt is
edited in one place (then ``make cassettes notebooks`` re-records what depends on it).
Content never imports the checks; checks import content. ``labkit.course.models`` names every
model the course uses, by role.
"""
