"""Hostile case: allocates memory until something gives."""

hog = []
while True:
    hog.append(bytearray(512 * 2**20))  # past the 256 MB limit of the test at once
