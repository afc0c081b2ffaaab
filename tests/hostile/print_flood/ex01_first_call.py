"""Hostile case: floods stdout with print() at import."""

while True:
    print("spam " * 40)
