"""``python -m curifactory_like.cli`` runs the ``experiment`` command."""

from . import main

main()
