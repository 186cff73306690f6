"""``python -m edge_agent`` = ``uunet-edge``."""

from edge_agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
