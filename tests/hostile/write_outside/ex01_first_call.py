"""Hostile case: writes outside its folder (paths listed in targets.txt, plus a relative escape)."""

import os
import shutil
from pathlib import Path

here = Path(__file__).parent
(here / "notes.txt").write_text("writing in my own folder is fine\n")
for line in (here / "targets.txt").read_text().splitlines():
    target = Path(line)
    for attempt in ("open", "os.open", "rename", "rmtree"):
        try:
            if attempt == "open":
                with open(target, "a") as fh:
                    fh.write("pwned\n")
            elif attempt == "os.open":
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
            elif attempt == "rename":
                os.rename(here / "notes.txt", target)
            elif target.is_dir():
                shutil.rmtree(target)
        except OSError as err:
            print(f"{attempt} {target}: {type(err).__name__}")
try:
    Path("../../escape.txt").write_text("pwned")
except OSError as err:
    print(f"escape: {type(err).__name__}")
