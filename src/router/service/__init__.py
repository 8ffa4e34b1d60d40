"""The HTTP service: ``route(order)`` and the review tools over HTTP, for upstream services.

* :mod:`router.service.settings` -- configuration from the environment (``ROUTER_*``).
* :mod:`router.service.schemas` -- request and response bodies (apart from the domain models).
* :mod:`router.service.events` -- live-state events through the database, so every worker
  routes on the same state version.
* :mod:`router.service.app` -- the FastAPI application (``router serve`` runs it).
"""
