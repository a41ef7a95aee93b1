"""Car Studio's benchmarks: each figure is a ratio or a quantity measured side by side in one run.

Run them all with `make bench` (or `python -m bench`); `python -m bench zip intake` runs a few.
"""
