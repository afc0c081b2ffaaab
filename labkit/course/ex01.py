"""Lesson 01, your first API call: the request every notebook 01 cell and exercise 01 sends."""

from __future__ import annotations

from .models import FAST

#: The model of the first call: fast and cheap (the lesson's own choice is in notebook 01).
MODEL = FAST
SYSTEM = "You are a helpful business assistant."
PROMPT = "Write a professional email subject line for a sales outreach about project management software."
#: The conversation exercise 01's build_messages() must produce for PROMPT.
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
