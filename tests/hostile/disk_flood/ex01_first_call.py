"""Hostile case: writes 48 files of 7 MB each (336 MB) as fast as it can, each under the per-file limit."""

from pathlib import Path

chunk = b"x" * (7 * 2**20)
written = 0
for i in range(48):
    try:
        Path(f"blob{i:02d}.bin").write_bytes(chunk)
        written += 1
    except OSError as err:
        print("disk-flood: stopped at file", i, type(err).__name__)
        break
print("disk-flood: wrote", written, "files")


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
