# %% [markdown]
# # 00 · Setup: how this workbook runs, offline or live
#
# **What you will do here:** check that your machine is ready, learn the three modes the course
# runs in, and see what a live run of the whole course would cost before you spend anything.
#
# The course teaches you to call the OpenAI API from your own code. Every request in it has been
# recorded, so you can follow along with **no API key and no network**: that is *replay* mode. When
# you are ready, the same code runs against the real API with your key.

# %%
import labkit

labkit.notebook.intro()

# %% [markdown]
# ## The three modes
#
# | mode | when it is on | what happens |
# | --- | --- | --- |
# | replay | no `OPENAI_API_KEY` set (the default) | answers come from `cassettes/`; nothing leaves your machine |
# | live | `OPENAI_API_KEY` is set | requests go to the API and are billed to your account |
# | record | `LABKIT_MODE=record` plus a key | like live, and every exchange is saved (keys scrubbed) for replay |
#
# `labkit.client()` hands you a genuine `openai.OpenAI` object in every mode, so nothing you
# write changes when you go live. Replayed answers say where they came from: *authored* ones were
# written for this course in the API's exact format (with token counts computed by the real
# tokenizer), *recorded* ones came from the API through `make record`.

# %%
from labkit.course import models

print("mode now:", labkit.current_mode())
client = labkit.client("selftest")
reply = client.chat.completions.create(
    model=models.FAST,  # the course names every model once, by role, in labkit/course/models.py
    messages=[
        {"role": "system", "content": "You are a concise assistant for a software course."},
        {"role": "user", "content": "Say hello to a new learner in one sentence."},
    ],
)
print(reply.choices[0].message.content)
print(f"asked {models.FAST!r} (the course's 'fast' role); the answer names {reply.model!r}")
print(labkit.provenance(client))

# %% [markdown]
# ## Setting a key safely
#
# A key is a password to a billed account. Put it in the environment, never in a notebook
# (notebooks keep their outputs and get committed, shared and screenshotted):
#
# ```bash
# export OPENAI_API_KEY=sk-...          # this shell only
# # or, in a file named .env at the course root (git ignores it):
# OPENAI_API_KEY=sk-...
# ```
#
# Then restart the kernel. `labkit doctor` tells you which mode is on and whether the key looks
# right, without printing it. Run it from a terminal, or here:

# %%
# NBVAL_IGNORE_OUTPUT
# (versions and cassette counts change as the course grows)
from labkit import doctor

for finding in doctor.run():
    print("ok  " if finding.ok else "FAIL", finding.name + ":", finding.detail)

# %% [markdown]
# ## What would the whole course cost live?
#
# Every notebook names the cassettes it answers from in its first cell
# (`labkit.notebook.intro(...)`), and those recordings carry their token counts. Pricing the
# counts with the model catalog (`labkit/models.toml`, USD per 1M tokens, dated) gives the bill
# for running every notebook live once. Only the notebooks' own recordings count: the `selftest`
# cassette (the tests' and this page's hello) and the recordings only the checks use are left out,
# and this page's single request is priced from the `usage` it just returned. Prices change: the
# catalog records when each was checked.

# %%
# NBVAL_IGNORE_OUTPUT
# (this table grows with every lesson's recordings)
from labkit.costs import cost

rows = [("00_setup", 1, cost(reply.usage, reply.model).total_usd), *labkit.notebook.course_live_cost()]
for name, n, usd in rows:
    print(f"{name:<22} {n:>5} requests  ${usd:.4f}")
print(f"{'total':<22} {sum(r[1] for r in rows):>5} requests  ${sum(r[2] for r in rows):.4f}")

# %% [markdown]
# ## How the course is laid out
#
# | folder | what is in it | yours to edit? |
# | --- | --- | --- |
# | `notebooks/` | the lessons, in order; each opens with what you will build and closes with the check | run them |
# | `exercises/exNN_*.py` | your code: the starters, generated from `solutions/` with each part to write replaced by a `TODO` | **yes** |
# | `solutions/` | the reference answers the starters are made from (try first) | no |
# | `labkit/course/` | each lesson's content: prompts, system messages, schemas, stated inputs, and `models.py`, which names every model once, by role | no |
# | `cassettes/` | the recorded answers replay mode serves, and `cassettes/sources/` they are built from | no |
# | `labkit/` | the helper package: modes, replay, checks, grading | no |
#
# `labkit check exNN` (or the last cell of a notebook) runs the lesson's success metrics on your
# file and says what each failing one looks for. `labkit hint exNN` lists the checks your last
# run failed first, `labkit progress` counts your points across the course the way `labkit check`
# does, and `labkit watch` re-checks each time you save. Exercise `exNN` belongs to notebook `NN`;
# which part of the lesson each one is:

# %%
from labkit.progress import course_map

for ex_id, lesson, file, notebook in course_map():
    print(f"{ex_id}  {lesson:<42} {file}")

# %% [markdown]
# The lesson's three exercises are `ex02` (Exercise 1), `ex03` (Exercise 2) and `ex06`
# (Exercise 3); the others follow the lesson's own sections around them: its quick start, the
# batch example inside Exercise 2, its troubleshooting section, and the use cases that close
# Exercise 3.
#
# **Recap:** you are in replay mode unless you set a key; answers say where they came from; a key
# lives in your environment, never in a notebook. Next: `01_first_api_call`.
