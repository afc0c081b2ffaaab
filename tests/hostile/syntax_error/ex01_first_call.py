"""Hostile case: a syntax error (a missing closing bracket)."""

def build_messages(prompt="hi":
    return [{"role": "user", "content": prompt}]
