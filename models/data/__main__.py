"""``python -m models.data``: the same packer as ``uunet-train pack`` (bad input: exit 2)."""

import sys

from models.cli import main

raise SystemExit(main(["pack", *sys.argv[1:]]))
