"""Hostile case: a correct solution that is noisy on stderr (warnings, logging, prints); it must get full marks.

The test appends this noise to the current reference solution (so the case follows the course).
"""
# NOISE-BELOW: the grading test puts the reference solution above this line

import logging
import sys
import warnings

warnings.warn("this module is noisy on purpose", UserWarning, stacklevel=1)
warnings.warn("deprecated-looking thing", DeprecationWarning, stacklevel=1)
logging.warning("a logging warning at import")
print("a plain message on stderr", file=sys.stderr)
_summarize = summarize  # noqa: F821 - defined by the reference solution above


def summarize(completion):
    print("summarize called", file=sys.stderr)
    warnings.warn("still noisy", RuntimeWarning, stacklevel=1)
    return _summarize(completion)
