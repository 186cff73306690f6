"""The console's routers, one per page group (all under ``/console``, none in the OpenAPI)."""
