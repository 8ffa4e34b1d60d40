"""The FastAPI application: routing, review, overrides, events and outcomes over HTTP.

One :class:`~router.engine.Router` per worker process, all on one ledger database: its
stock table is the reservation truth (a decision's check-and-reserve is a conditional
update in the same transaction as its record), its ``state_events`` table the shared
live-state log (:mod:`router.service.events`). ``router serve`` runs this app under
uvicorn with ``ROUTER_WORKERS`` processes.

Errors: 422 with ``{"error": {"type", "field", "reason"}}`` for a caller's mistake, 404
for an unknown decision, 409 for an override that conflicts with current stock or a
request whose ``Idempotency-Key`` is still being served, 401 without the token, 413
for a body over the limit, 503 when the ledger cannot be written. Nothing is written
when a request fails.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import orjson
import structlog
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.errors import (
    InvalidEventError,
    InvalidOrderError,
    LedgerError,
    ReplayError,
    RouterError,
    UnknownDecisionError,
    UnknownOrderError,
    UnknownStrategyError,
    field_path,
)
from router.service import metrics
from router.service.events import EventSync
from router.service.schemas import (
    BatchIn,
    BatchOut,
    DecisionList,
    ErrorOut,
    EventsIn,
    EventsOut,
    OrderIn,
    OutcomesIn,
    OutcomesOut,
    OverrideIn,
    ReleaseIn,
    ReplayIn,
    ReplayOut,
    RerouteIn,
    RerouteOut,
    RouteOut,
)
from router.service.settings import ServiceSettings

__all__ = ["create_app"]

log = structlog.get_logger("router.service")

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "a field is invalid: which one and why"},
    401: {"model": ErrorOut, "description": "the bearer token is missing or wrong"},
}


class ApiError(Exception):
    """An error response: status, type, field, reason."""

    def __init__(self, status: int, kind: str, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason, self.field = status, kind, reason, field


def _error(status: int, kind: str, reason: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": kind, "reason": reason}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status)


def _mask(value: str) -> str:
    """Keep the first character of each word-like part: 'ada@example.com' -> 'a**@e******.c**'."""
    out, first = [], True
    for ch in value:
        if ch.isalnum():
            out.append(ch if first else "*")
            first = False
        else:
            out.append(ch)
            first = True
    return "".join(out)


def _pii(order: OrderIn, policy: str) -> dict | None:
    """What the stored record says about the order's personal fields."""
    if order.contact is None:
        return None
    given = {k: v for k, v in order.contact.model_dump().items() if v is not None}
    if not given:
        return None
    fields = sorted(f"contact.{k}" for k in given)
    if policy == "drop":
        return {"policy": "drop", "fields": fields}
    return {"policy": "mask", "fields": fields, "masked": {f"contact.{k}": _mask(v) for k, v in sorted(given.items())}}


def _route_out(d, seq: int) -> dict:
    rec = d.record
    state = rec.get("state") or {}
    return {
        "decision_id": d.decision_id,
        "order_id": d.order_id,
        "status": d.status,
        "strategy": d.strategy,
        "plan": rec.get("chosen"),
        "sentence": (rec.get("rationale") or {}).get("sentence", ""),
        "state_version": state.get("version"),
        "events_seq": rec.get("events_seq", seq),
        "reserve_retries": int(state.get("reserve_retries", 0)),
        "latency_ms": round(float(rec.get("latency_ms", d.latency_ms)), 3),
    }


def create_app(settings: ServiceSettings | None = None, *, router_factory: Callable[[ServiceSettings], Any] | None = None) -> FastAPI:
    """The application. ``router_factory(settings)`` builds the worker's Router (tests inject one)."""
    settings = settings or ServiceSettings()
    problems = settings.problems()
    if problems:
        raise SystemExit("router serve: " + "; ".join(problems))
    _configure_logging(settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        router = (router_factory or _build_router)(settings)
        _warm(router)
        app.state.router = router
        app.state.sync = EventSync(router)
        app.state.ready = True
        log.info("worker ready", pid=os.getpid(), scenario=router.scenario.name, pool=router.stock_pool,
                 database=router.ledger.url, events_seq=app.state.sync.seq)  # fmt: skip
        try:
            yield
        finally:
            app.state.ready = False
            router.close()

    app = FastAPI(
        title="router",
        version="1",
        summary="Order routing with a recorded, replayable rationale",
        description="Route orders to warehouses and stores, review and override decisions, push live "
        "state and outcomes. Errors are `{error: {type, field, reason}}`. Write endpoints take an "
        "`Idempotency-Key` header: a retry returns the stored response and reserves nothing again.",
        lifespan=lifespan,
    )
    app.state.ready = False

    # ---------------------------------------------------------------- plumbing
    @app.middleware("http")
    async def envelope(request: Request, call_next):
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=rid)
        t0 = time.perf_counter()
        length = request.headers.get("content-length")
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            # a chunked body says no length up front: read it (Starlette keeps it for the endpoint)
            length = str(len(await request.body()))
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            response: Response = _error(413, "too_large", f"request body of {length} bytes is over the "
                                        f"{settings.max_body_bytes}-byte limit (ROUTER_MAX_BODY_BYTES)")  # fmt: skip
        else:
            try:
                response = await call_next(request)
            except Exception:  # noqa: BLE001 - logged with the request id; the caller gets a 500 without internals
                log.exception("unhandled error", path=request.url.path)
                response = _error(500, "internal", f"internal error; quote request id {rid}")
        route = request.scope.get("route")
        endpoint = route.path if route is not None else "unmatched"
        metrics.observe(request.method, endpoint, response.status_code, time.perf_counter() - t0)
        response.headers["x-request-id"] = rid
        structlog.contextvars.unbind_contextvars("request_id")
        return response

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = [p for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = field_path(loc) or "body"
        reason = str(first.get("msg", "invalid"))
        return JSONResponse(
            {"error": {"type": "invalid_request", "field": field, "reason": reason,
                       "errors": [{"field": field_path([p for p in e.get("loc", ()) if p not in ("body", "query", "path")]),
                                   "reason": str(e.get("msg"))} for e in errs[:20]]}},  # fmt: skip
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        # FastAPI answers a body that is not JSON with a 400; a caller's mistake is a 422 here
        if exc.status_code == 400:
            return _error(422, "invalid_request", f"the body is not valid JSON ({exc.detail})", "body")
        kinds = {404: "not_found", 405: "method_not_allowed"}
        out = _error(exc.status_code, kinds.get(exc.status_code, "http_error"), str(exc.detail))
        for name, value in (exc.headers or {}).items():  # a 405 names the allowed methods
            out.headers[name] = value
        return out

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.kind, exc.reason, exc.field)

    def require_token(authorization: str | None = Header(default=None, include_in_schema=False)) -> None:
        if settings.token is None:
            return
        expected = "Bearer " + settings.token.get_secret_value()
        if authorization is None or not _same(authorization, expected):
            raise ApiError(401, "unauthorized", "write endpoints need 'Authorization: Bearer <token>'")

    def router_of(request: Request):
        if not request.app.state.ready:
            raise ApiError(503, "not_ready", "the worker is starting or stopping")
        return request.app.state.router, request.app.state.sync

    def idempotent(
        request: Request,
        endpoint: str,
        body: BaseModel,
        work: Callable[[str | None], tuple[int, dict]],
        *,
        derived_ids: bool = False,
    ):
        """Run ``work(key)`` once per Idempotency-Key; a retry gets the stored response.

        ``derived_ids``: the work records decisions whose ids derive from the key (route,
        batch), so the ledger itself refuses a second recording. Such a request proceeds
        even when an earlier one with the key is unfinished (it died after its claim, or
        is still running): it either finds the decisions recorded or records them once.
        Other endpoints answer 409 while a claim of the key has no response.
        """
        key = request.headers.get("idempotency-key")
        router = request.app.state.router
        if key is None:
            status, out = work(None)
            return JSONResponse(out, status_code=status)
        if not (1 <= len(key) <= 200):
            raise ApiError(422, "invalid_request", "1 to 200 characters", "Idempotency-Key")
        digest = hashlib.sha256(orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()
        ledger = router.ledger
        for _attempt in range(2):
            got = ledger.idempotency_get(key, endpoint)
            if got is not None:
                stored_hash, status, response = got
                if stored_hash != digest:
                    raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used with another "
                                   "request body; use a new key for a new request", "Idempotency-Key")  # fmt: skip
                if response is not None:
                    metrics.IDEMPOTENT_REPLAYS.inc()
                    return JSONResponse(orjson.loads(response), status_code=status, headers={"idempotent-replayed": "true"})
            if ledger.idempotency_claim(key, endpoint, digest, _now()) or (got is not None and derived_ids):
                break
        else:
            raise ApiError(409, "in_progress", "a request with this Idempotency-Key is being served, or was "
                           "interrupted; GET the decision to see whether it took effect, or use a new key",
                           "Idempotency-Key")  # fmt: skip
        try:
            status, out = work(key)
        except BaseException:
            ledger.idempotency_release(key, endpoint)  # the request failed: nothing stored, the key is free again
            raise
        ledger.idempotency_store(key, endpoint, status, orjson.dumps(out).decode())
        return JSONResponse(out, status_code=status)

    # ----------------------------------------------------------------- routing
    @app.post("/v1/route", response_model=RouteOut, responses=_ERRORS, tags=["routing"], dependencies=[Depends(require_token)])
    def route(order: OrderIn, request: Request, strategy: str | None = Query(default=None, max_length=50)):
        """Choose, reserve and record a plan for one order."""
        router, sync = router_of(request)

        def work(key: str | None) -> tuple[int, dict]:
            seq = sync.sync()
            did = None if key is None else _decision_id(key, "route")
            if did is not None:
                existing = _existing(router, did)
                if existing is not None:
                    return 200, _route_out(existing, seq)
            try:
                d = _routed(router, lambda: router.route(
                    _order(order), strategy=strategy, decision_id=did,
                    annotations=_annotations(order, settings.pii_policy, seq, request)))  # fmt: skip
            except ApiError as exc:
                # another request with the key recorded it first: the ledger refused the id
                existing = None if did is None or exc.status != 503 else _existing(router, did)
                if existing is None:
                    raise
                return 200, _route_out(existing, seq)
            return 200, _route_out(d, seq)

        return idempotent(request, "/v1/route", order, work, derived_ids=True)

    @app.post("/v1/route:batch", response_model=BatchOut, responses=_ERRORS, tags=["routing"], dependencies=[Depends(require_token)])
    def route_batch(batch: BatchIn, request: Request, strategy: str | None = Query(default=None, max_length=50)):
        """Route orders one after another (each sees the reservations before it), recorded in one transaction."""
        if len(batch.orders) > settings.max_batch:
            raise ApiError(422, "too_many", f"{len(batch.orders)} orders; at most {settings.max_batch} per request "
                           "(ROUTER_MAX_BATCH)", "orders")  # fmt: skip
        router, sync = router_of(request)

        def work(key: str | None) -> tuple[int, dict]:
            seq = sync.sync()
            ids = None if key is None else [_decision_id(key, f"batch/{i}") for i in range(len(batch.orders))]
            if ids is not None:
                existing = [_existing(router, i) for i in ids]
                if all(e is not None for e in existing):
                    return 200, {"decisions": [_route_out(e, seq) for e in existing]}
            orders = [_order(o) for o in batch.orders]
            notes = [_annotations(o, settings.pii_policy, seq, request) for o in batch.orders]
            try:
                ds = _routed(router, lambda: router.route_batch(orders, strategy=strategy, decision_ids=ids, annotations=notes))
            except ApiError as exc:
                found = [] if ids is None or exc.status != 503 else [_existing(router, i) for i in ids]
                if not found or any(e is None for e in found):
                    raise
                return 200, {"decisions": [_route_out(e, seq) for e in found]}
            return 200, {"decisions": [_route_out(d, seq) for d in ds]}

        return idempotent(request, "/v1/route:batch", batch, work, derived_ids=True)

    # ------------------------------------------------------------------ review
    @app.get("/v1/decisions/{decision_id}", tags=["review"], responses={404: {"model": ErrorOut}})
    def get_decision(decision_id: str, request: Request) -> dict:
        """The decision record as recorded (plan, rationale, inputs), with its overrides and outcomes."""
        router, _ = router_of(request)
        try:
            rec = router.ledger.get_decision(decision_id)
        except UnknownDecisionError:
            raise ApiError(404, "not_found", f"no decision {decision_id!r}", "decision_id") from None
        return {
            "record": rec,
            "overrides": router.ledger.overrides_for(decision_id),
            "outcomes": router.ledger.outcomes_for(decision_id),
        }

    @app.get("/v1/decisions", response_model=DecisionList, tags=["review"], responses=_ERRORS)
    def list_decisions(
        request: Request,
        order_id: str | None = Query(default=None, max_length=200),
        strategy: str | None = Query(default=None, max_length=50),
        node: str | None = Query(default=None, max_length=100),
        since: str | None = Query(default=None, max_length=40, description="ISO 8601: decided at or after"),
        overridden: bool | None = None,
        limit: int = Query(default=50, ge=1, le=500),
        cursor: int = Query(default=0, ge=0, description="next_cursor of the previous page"),
    ) -> dict:
        """Decision records, oldest first, filtered; page with ``cursor``."""
        router, _ = router_of(request)
        if since is not None:
            try:
                since = datetime.fromisoformat(since.replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()
            except ValueError:
                raise ApiError(422, "invalid_request", "an ISO 8601 time such as 2026-11-02T09:00:00Z", "since") from None
        items, nxt = router.ledger.list_decisions(
            order_id=order_id, strategy=strategy, node=node, since=since, overridden=overridden, limit=limit, after=cursor
        )
        return {"items": items, "next_cursor": nxt}

    @app.post(
        "/v1/decisions/{decision_id}/override", tags=["review"], dependencies=[Depends(require_token)],
        responses={**_ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    )  # fmt: skip
    def override(decision_id: str, body: OverrideIn, request: Request) -> dict:
        """Replace the decision's plan; the reservation moves atomically and the override is recorded."""
        from router.engine.override import InvalidOverrideError, OverrideConflict

        router, sync = router_of(request)

        def work(key: str | None) -> tuple[int, dict]:
            sync.sync()
            try:
                out = router.override(decision_id, actor=body.actor, reason=body.reason, plan=body.plan,
                                      candidate_rank=body.candidate_rank)  # fmt: skip
            except UnknownDecisionError:
                raise ApiError(404, "not_found", f"no decision {decision_id!r}", "decision_id") from None
            except InvalidOverrideError as exc:
                raise ApiError(422, "invalid_override", exc.reason, exc.field) from None
            except OverrideConflict as exc:
                raise ApiError(409, "conflict", str(exc)) from None
            except LedgerError as exc:
                metrics.LEDGER_FAILURES.inc()
                raise ApiError(503, "ledger_unavailable", str(exc)) from None
            return 200, out

        return idempotent(request, f"/v1/decisions/{decision_id}/override", body, work)

    @app.post(
        "/v1/decisions/{decision_id}/replay", response_model=ReplayOut, tags=["review"],
        responses={**_ERRORS, 404: {"model": ErrorOut}},
    )  # fmt: skip
    def replay(decision_id: str, request: Request, body: ReplayIn | None = None) -> dict:
        """Re-derive the decision from its stored inputs; with ``strategy``, what that strategy would have done."""
        router, _ = router_of(request)
        strategy = body.strategy if body is not None else None
        try:
            res = router.replay(decision_id, strategy=strategy)
        except UnknownDecisionError:
            raise ApiError(404, "not_found", f"no decision {decision_id!r}", "decision_id") from None
        except UnknownStrategyError as exc:
            raise ApiError(422, "invalid_request", str(exc), "strategy") from None
        except ReplayError as exc:
            raise ApiError(422, "not_replayable", str(exc), "decision_id") from None
        return {
            "decision_id": res.decision_id,
            "strategy": res.strategy,
            "matches": res.matches,
            "original_plan": res.original_plan,
            "replayed_plan": res.replayed_plan,
            "original_score": res.original_score,
            "replayed_score": res.replayed_score,
            "differences": list(res.differences),
        }

    # -------------------------------------------------------- state & outcomes
    @app.post("/v1/events", response_model=EventsOut, responses=_ERRORS, tags=["state"], dependencies=[Depends(require_token)])
    def events(body: EventsIn, request: Request):
        """Live-state events (stock, receipts, shipments, load, congestion, closures, weather), all or none."""
        if len(body.events) > settings.max_batch:
            raise ApiError(422, "too_many", f"{len(body.events)} events; at most {settings.max_batch} per request", "events")
        router, sync = router_of(request)

        def work(key: str | None) -> tuple[int, dict]:
            sync.sync()
            try:
                checked = sync.check(body.events)
                seq = sync.post(checked)
            except InvalidEventError as exc:
                raise ApiError(422, "invalid_event", exc.reason, exc.field) from None
            except LedgerError as exc:
                metrics.LEDGER_FAILURES.inc()
                raise ApiError(503, "ledger_unavailable", str(exc)) from None
            return 200, {"applied": len(checked), "events_seq": seq, "state_version": router.state.version}

        return idempotent(request, "/v1/events", body, work)

    @app.post("/v1/outcomes", response_model=OutcomesOut, responses={**_ERRORS, 404: {"model": ErrorOut}},
              tags=["state"], dependencies=[Depends(require_token)])  # fmt: skip
    def outcomes(body: OutcomesIn, request: Request):
        """Delivery outcomes per decision (and leg): recorded in the ledger, and fed to on-time targets."""
        router, _ = router_of(request)

        def work(key: str | None) -> tuple[int, dict]:
            recs, parsed = [], []
            for i, o in enumerate(body.outcomes):  # check all before writing any
                try:
                    when = datetime.fromisoformat(o.delivered_at.replace("Z", "+00:00"))
                except ValueError:
                    raise ApiError(422, "invalid_request", "an ISO 8601 time", f"outcomes[{i}].delivered_at") from None
                if when.tzinfo is None:
                    raise ApiError(422, "invalid_request", "give a timezone (e.g. Z)", f"outcomes[{i}].delivered_at")
                try:
                    rec = router.ledger.get_decision(o.decision_id)
                except UnknownDecisionError:
                    raise ApiError(404, "not_found", f"no decision {o.decision_id!r}", f"outcomes[{i}].decision_id") from None
                legs = (rec.get("chosen") or {}).get("legs") or []
                if not legs:
                    raise ApiError(422, "invalid_request", "the decision shipped nothing", f"outcomes[{i}].decision_id")
                if o.leg is not None and o.leg >= len(legs):
                    raise ApiError(422, "invalid_request", f"the plan has {len(legs)} legs", f"outcomes[{i}].leg")
                recs.append(rec)
                parsed.append(when.astimezone(timezone.utc))
            out = []
            for o, rec, when in zip(body.outcomes, recs, parsed):
                promised = rec["order"].get("promised_by") or _promise(router, rec)
                on_time = promised is None or when <= datetime.fromisoformat(promised)
                oid = router.ledger.append_outcome(
                    o.decision_id,
                    body={"delivered_at": when.isoformat(), "leg": o.leg, "on_time": on_time},
                    created_at=_now(),
                )
                router.observe_outcome(rec["order_id"], when, on_time)
                out.append({"outcome_id": oid, "decision_id": o.decision_id, "on_time": on_time})
            return 200, {"recorded": out}

        return idempotent(request, "/v1/outcomes", body, work)

    # ------------------------------------------------------------ re-routing
    @app.post("/v1/orders/{order_id}/release", tags=["re-routing"], dependencies=[Depends(require_token)],
              responses={**_ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}})  # fmt: skip
    def release(order_id: str, request: Request, body: ReleaseIn | None = None) -> dict:
        """Picking started (or the order shipped): re-routing no longer moves the order."""
        router, _ = router_of(request)
        state = (body or ReleaseIn()).state

        def work(key: str | None) -> tuple[int, dict]:
            try:
                router.release(order_id, state=state)
            except UnknownOrderError as exc:
                raise ApiError(404, "not_found", exc.reason, "order_id") from None
            except InvalidEventError as exc:  # known, but past that state
                raise ApiError(409, "conflict", exc.reason, "order_id") from None
            except LedgerError as exc:
                metrics.LEDGER_FAILURES.inc()
                raise ApiError(503, "ledger_unavailable", str(exc)) from None
            return 200, {"order_id": order_id, "state": state}

        return idempotent(request, f"/v1/orders/{order_id}/release", body or ReleaseIn(), work)

    @app.post("/v1/reroute", response_model=RerouteOut, tags=["re-routing"], dependencies=[Depends(require_token)],
              responses={**_ERRORS, 409: {"model": ErrorOut}})  # fmt: skip
    def reroute(body: RerouteIn, request: Request, strategy: str | None = Query(default=None, max_length=50)):
        """Re-optimise open orders jointly: a dry run by default; with ``apply`` the moves are written, all or none."""
        from dataclasses import replace

        from router.engine.reroute import InvalidRerouteError, RerouteConflict, RerouteOptions

        router, sync = router_of(request)

        def work(key: str | None) -> tuple[int, dict]:
            sync.sync()
            # one process: the service's own workers are its parallelism, and a worker does not fork
            # children from a request thread while others serve requests
            opts = RerouteOptions(workers=1)
            if body.move_cost_usd is not None:
                opts = replace(opts, move_cost_usd=float(body.move_cost_usd))
            flt = None if body.filter is None else body.filter.model_dump(exclude_none=True)
            try:
                plan = router.reroute(body.order_ids, filter=flt or None, apply=body.apply,
                                      time_limit_s=body.time_limit_s, strategy=strategy, options=opts)  # fmt: skip
            except InvalidRerouteError as exc:
                raise ApiError(422, "invalid_request", exc.reason, exc.field) from None
            except UnknownStrategyError as exc:
                raise ApiError(422, "invalid_request", str(exc), "strategy") from None
            except RerouteConflict as exc:
                raise ApiError(409, "conflict", str(exc)) from None
            except LedgerError as exc:
                metrics.LEDGER_FAILURES.inc()
                raise ApiError(503, "ledger_unavailable", str(exc)) from None
            if plan.applied and plan.moves:
                # each move wrote a decision: counted apart from route()'s by its status
                metrics.DECISIONS.labels(strategy=plan.strategy, status="rerouted", fallback="none").inc(len(plan.moves))
            log.info("reroute", job_id=plan.job_id, orders=plan.orders, moved=len(plan.moves), applied=plan.applied)
            return 200, orjson.loads(orjson.dumps(plan.to_json(), option=orjson.OPT_SERIALIZE_NUMPY, default=str))

        return idempotent(request, "/v1/reroute", body, work)

    # ------------------------------------------------------------------ health
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        """The process is up."""
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/readyz", tags=["health"], responses={503: {"model": ErrorOut}})
    def readyz(request: Request):
        """The worker has its router and can reach the ledger."""
        if not request.app.state.ready:
            return _error(503, "not_ready", "the worker is starting or stopping")
        try:
            seq = request.app.state.router.ledger.events_head(request.app.state.router.stock_pool)
        except LedgerError as exc:
            return _error(503, "ledger_unavailable", str(exc))
        return {"status": "ready", "events_seq": seq}

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics_endpoint() -> Response:
        """Prometheus metrics of every worker (multiprocess-safe)."""
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    return app


# ------------------------------------------------------------------- helpers
def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _decision_id(key: str, what: str) -> str:
    """A decision id derived from the Idempotency-Key: the ledger records an id once, so a retry cannot route twice."""
    return "idem-" + hashlib.sha256(f"{what}\x1f{key}".encode()).hexdigest()[:32]


def _existing(router, decision_id: str):
    from router.engine.router import Decision

    try:
        return Decision.from_record(router.ledger.get_decision(decision_id))
    except UnknownDecisionError:
        return None


def _order(o: OrderIn) -> dict:
    return o.order_dict(_now())


def _annotations(o: OrderIn, policy: str, seq: int, request: Request) -> dict:
    out: dict[str, Any] = {"events_seq": seq}
    pii = _pii(o, policy)
    if pii is not None:
        out["pii"] = pii
    rid = structlog.contextvars.get_contextvars().get("request_id")
    if rid:
        out["request_id"] = rid
    return out


def _routed(router, call: Callable[[], Any]):
    """Run a routing call, turning a caller's mistake into a 422 and a ledger failure into a 503."""
    before = router.reserve_conflicts
    try:
        out = call()
    except InvalidOrderError as exc:
        raise ApiError(422, "invalid_order", exc.reason, exc.field) from None
    except UnknownStrategyError as exc:
        raise ApiError(422, "invalid_request", str(exc), "strategy") from None
    except LedgerError as exc:
        metrics.LEDGER_FAILURES.inc()
        raise ApiError(503, "ledger_unavailable", str(exc)) from None
    except RouterError as exc:  # pragma: no cover - route() records every other failure
        raise ApiError(500, "internal", str(exc)) from None
    metrics.CONFLICT_RETRIES.inc(router.reserve_conflicts - before)
    for d in out if isinstance(out, list) else [out]:
        causes = ((d.record.get("fallback") or {}).get("causes")) or []
        metrics.DECISIONS.labels(strategy=d.strategy, status=d.status,
                                 fallback=causes[0].get("stage", "none") if causes else "none").inc()  # fmt: skip
        structlog.get_logger("router.service").info("decision", decision_id=d.decision_id, order_id=d.order_id,
                                                    status=d.status, strategy=d.strategy)  # fmt: skip
    return out


def _promise(router, rec: dict) -> str | None:
    from router.context import promised_at
    from router.domain import Order

    try:
        return promised_at(Order.model_validate(rec["order"]), router.scenario).isoformat()
    except Exception:  # noqa: BLE001 - an old record's order: no promise to compare with
        return None


def _build_router(settings: ServiceSettings):
    from router.engine import Router
    from router.scenario import load_scenario

    model: Any = None if settings.model == "none" else settings.model
    return Router(
        load_scenario(settings.scenario), ledger=settings.database_url, risk_model=model, stock_pool=settings.stock_pool
    )


def _warm(router) -> None:
    """Decide one made-up order without reserving or recording it: the first real request
    then does not pay for loading compiled kernels (about 0.3 s)."""
    from router.domain import Order

    sc = router.scenario
    order = Order.model_validate(
        {
            "order_id": "warm-up",
            "customer": {"customer_id": "warm-up", "tier": next(iter(sc.tiers))},
            "destination": {"region": router.network.region_ids[0]},
            "lines": [{"sku": router.network.sku_ids[0], "qty": 1}],
            "created_at": datetime.now(timezone.utc).isoformat(),
        }
    )
    now = datetime.now(timezone.utc)
    ctx = router.contexts.build(order, now, router.state.weather_at_region)
    view = router.state.view(ctx.sku_idx, router._hours(now))
    out = router.decide(view, ctx, router.strategy, explain=True)
    router.records.full(order, now, ctx, view, out, router.params, time.perf_counter())


def _configure_logging(fmt: str) -> None:
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        cache_logger_on_first_use=True,
    )
