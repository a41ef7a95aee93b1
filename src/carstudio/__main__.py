"""`python -m carstudio` is the `carstudio` command."""

from carstudio.cli import app

app()
