"""``python -m tunery`` runs the command line."""

from tunery.cli import main

main()
