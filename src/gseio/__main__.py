"""``python -m gseio``: the command line."""

from .cli import main

main()
