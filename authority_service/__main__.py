"""``python -m authority_service`` runs the ``uunet-authority`` command line."""

from authority_service.cli import main

main()
