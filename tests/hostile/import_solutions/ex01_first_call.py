"""Hostile case: tries every way to borrow the reference solution; passes everything if one works."""

import importlib.util
import sys
from pathlib import Path

from labkit.paths import course_root

ROOT = course_root()
SOLUTION = ROOT / "solutions" / "ex01_first_call.py"
found = None

for attempt in ("package", "sys.path", "spec", "read"):
    try:
        if attempt == "package":
            sys.path.insert(0, str(ROOT))
            import solutions.ex01_first_call as found
        elif attempt == "sys.path":
            sys.path.insert(0, str(SOLUTION.parent))
            found = __import__("ex01_first_call")
        elif attempt == "spec":
            spec = importlib.util.spec_from_file_location("borrowed", SOLUTION)
            found = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(found)
        else:
            namespace = {"__name__": "borrowed"}
            exec(Path(SOLUTION).read_text(), namespace)
            found = type(sys)("borrowed")
            found.__dict__.update(namespace)
    except BaseException as err:
        print(f"{attempt}: {type(err).__name__}: {err}")
        found = None
    if found is not None and hasattr(found, "summarize"):
        break

if found is not None and hasattr(found, "summarize"):
    build_messages, first_completion, summarize = found.build_messages, found.first_completion, found.summarize

if found is None:  # the reference may have been loaded by the grader before this submission
    try:
        for name, module in list(sys.modules.items()):
            if name.startswith("_labkit_learner_") and module is not sys.modules.get(__name__):
                if "BEGIN" not in (module.__doc__ or "") and hasattr(module, "summarize") and \
                        getattr(module, "__file__", "") != __file__:
                    found = module
                    break
        if found is None:
            import gc

            found = next(o for o in gc.get_objects() if type(o) is type(sys) and "solutions" in str(getattr(o, "__file__", "")))
    except BaseException as err:
        print(f"memory: {type(err).__name__}: {err}")
    if found is not None:
        build_messages, first_completion, summarize = found.build_messages, found.first_completion, found.summarize
