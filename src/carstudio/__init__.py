"""Car Studio: photographic car images from a description or a CSV of up to 50 cars."""

__version__ = "0.1.0"
