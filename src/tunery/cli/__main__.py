"""``python -m tunery.cli`` runs the command line."""

from tunery.cli import main

main()
