"""Schemathesis against the service's OpenAPI document: generated requests for every operation,
no 5xx, and every response conforms to the document (status, content type, body schema)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import warnings
from pathlib import Path

import schemathesis
from conftest import SCENARIOS
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from router.service.app import create_app
from router.service.settings import ServiceSettings

_DIR = Path(tempfile.mkdtemp(prefix="router-schemathesis-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
app = create_app(
    ServiceSettings(
        database_url=f"sqlite:///{_DIR / 'ledger.sqlite'}",
        scenario=str(SCENARIOS / "national.yaml"),  # the default: the document's examples are for it
        model="none",
        log_format="console",
    )
)
# the worker's startup (its Router, the event log) runs once for the module, as under uvicorn
_client = TestClient(app)
_client.__enter__()
atexit.register(_client.__exit__, None, None, None)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_and_never_answers_5xx(case):
    # A request can fit the schema and still be refused with a 422: an unknown SKU, a
    # closed region, a lateness promise in the past are rules of the scenario, not of the
    # document. Every other check runs: no 5xx, documented status codes, content types,
    # response bodies and headers that match the document.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
