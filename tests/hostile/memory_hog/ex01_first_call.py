"""Hostile case: allocates memory until something gives."""

hog = []
while True:
    hog.append(bytearray(32 * 2**20))
