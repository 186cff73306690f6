"""``python -m models.data``: pack datasets into one file (see :func:`models.data.pack.main`)."""

from .pack import main

raise SystemExit(main())
