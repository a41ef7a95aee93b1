"""What a person chooses for a batch besides its file, passed as one value by every way in:
the page's upload, the API, `carstudio batch` and the client of a remote server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchOptions:
    source_name: str = ""
    """The uploaded file's name, as the batch lists it."""
    skip_invalid: bool = False
    """Run a file's valid rows though others are not valid (else the file is refused)."""
    model: str | None = None
    """A name from the models table; None: CARSTUDIO_MODEL."""
    fresh: bool = False
    """Make new images even where the image cache holds identical ones."""
    name_template: str | None = None
    """How the images are named (`naming.NameTemplate`); None: the default."""
    output: str | None = None
    """The preset the images are delivered in; None: CARSTUDIO_OUTPUT."""


DEFAULTS = BatchOptions()
"""A batch for which nothing was chosen."""
