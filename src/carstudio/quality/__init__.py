"""Image checks: shape, background, colour, blank and duplicate, each with a verdict."""
