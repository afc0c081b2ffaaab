"""Hostile case: an exception while the module is imported."""

raise RuntimeError("this submission breaks on import")
