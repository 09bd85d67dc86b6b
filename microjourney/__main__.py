"""``python -m microjourney`` runs the command line."""

from .cli import main

main()
