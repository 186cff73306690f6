"""The HTTP API: one router per resource (:mod:`.routes`), built by :func:`.app.create_app`."""
