"""`python -m siyu.cli`, the same as the `siyu` console script."""

from siyu.cli import app

app()
