"""``python -m router ...``: the same as the ``router`` command."""

from router.cli import app

app()
