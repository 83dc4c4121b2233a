"""The REST control plane (DESIGN.md §5.2): FastAPI, problem+json errors with field paths."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from broker.auth import MAX_TTL_S, Claims, Scope, TokenCache, bearer
from broker.channels import ADAPTERS, DeliveryPlatformOrder
from broker.errors import BrokerError, NotFound, RateLimited, StorageError
from broker.fleet import FleetState
from broker.limits import RateLimiter
from broker.metrics import Metrics
from broker.orders import Orders
from broker.revocation import Revocations
from broker.rollout import Rollout
from broker.sos import SpeedOfService, report_csv
from broker.storage import Backend
from broker.webhooks import Webhooks
from protocol.config import StoreConfig
from protocol.orders import Amendment, CancelRequest, Order, ReprintRequest
from protocol.reports import SosReport
from protocol.rest import (
    PROBLEM_JSON,
    BatchRequest,
    BatchResponse,
    BatchResult,
    ConfigResult,
    JobView,
    OrderView,
    PrinterView,
    Problem,
    RevokeResult,
    StoreView,
    SubmitResult,
    TokenRevocation,
    field_errors,
    problem_json,
    validation_detail,
    with_paths,
)
from protocol.rollout import Promotion, Release, ReleaseCreate, RingView
from protocol.status import PrinterState
from protocol.webhooks import (
    Delivery,
    ReplayRequest,
    ReplayResult,
    Webhook,
    WebhookCreate,
    WebhookCreated,
)

log = logging.getLogger(__name__)

PROBLEM = PROBLEM_JSON
STORAGE_RETRY_AFTER_S = 2
IDENT = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
IdParam = Annotated[str, Path(min_length=1, max_length=64, pattern=IDENT)]
PRINTER_CURSOR = r"^[A-Za-z0-9][A-Za-z0-9._:-]*/[A-Za-z0-9][A-Za-z0-9._:-]*$"
MAX_PAGE = 1000  # items per page of the fleet lists
DUMP_CHUNK = 500  # fleet list items serialised between two turns of the loop


def problem(
    status: int,
    title: str,
    detail: str | None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = problem_json(status, title, detail, errors)
    return Response(body, status, headers, media_type=PROBLEM)


async def _json_array(pages: AsyncIterator[list[StoreView]]) -> AsyncIterator[bytes]:
    sep = b"["
    async for page in pages:
        yield sep + ",".join(v.model_dump_json() for v in page).encode()
        sep = b","
    yield b"[]" if sep == b"[" else b"]"


def _page(request: Request, parts: list[str], next_query: dict[str, Any] | None) -> Response:
    """A JSON array from pre-serialised parts, with ``Link: <…>; rel="next"`` when
    ``next_query`` names the next page (RFC 8288, as GitHub's API pages)."""
    body = "[" + ",".join(p for p in parts if p) + "]"
    response = Response(body, media_type="application/json")
    if next_query is not None:
        query = urlencode({k: v for k, v in next_query.items() if v is not None})
        response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return response


def json_response(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status, media_type="application/json")


class Api:
    """Holds the services the routes need; ``app()`` builds the FastAPI application."""

    def __init__(
        self,
        storage: Backend,
        orders: Orders,
        fleet: FleetState,
        metrics: Metrics,
        tokens: TokenCache,
        ingest: RateLimiter,
        revocations: Revocations,
    ) -> None:
        self.storage = storage
        self.orders = orders
        self.fleet = fleet
        self.metrics = metrics
        self.tokens = tokens
        self.ingest = ingest
        self.revocations = revocations
        self.webhooks: Webhooks | None = None
        self.sos: SpeedOfService | None = None
        self.rollout = Rollout(storage, orders, orders.now)
        self._created = metrics.orders.labels("created")  # (a lookup per order otherwise)
        self._duplicate = metrics.orders.labels("duplicate")

    # -- auth ------------------------------------------------------------------------------
    # async on purpose: FastAPI runs plain ``def`` dependencies in a thread pool.
    async def claims(self, request: Request) -> Claims:
        return self.tokens.verify(bearer(request.headers.get("authorization")))

    async def hq(self, request: Request) -> Claims:
        claims = await self.claims(request)
        claims.require(claims.scope is Scope.HQ, "use the HQ API")
        return claims

    async def ingester(self, request: Request) -> Claims:
        claims = await self.claims(request)
        claims.require(claims.scope is Scope.INGEST, "submit or change orders")
        return claims

    async def reader(self, request: Request) -> Claims:
        """Orders and jobs: a scope's answer (403) never depends on whether an id exists."""
        claims = await self.claims(request)
        claims.require(claims.scope in (Scope.INGEST, Scope.HQ), "read orders or jobs")
        return claims

    def limit(self, claims: Claims, cost: int = 1) -> None:
        wait = self.ingest.take(claims.jti, cost)
        if wait > 0:
            raise RateLimited("ingest rate limit for this token", wait)

    async def order_store(self, claims: Claims, order_id: str, write: bool) -> str:
        """The order's store; 404 as for no order when the token may not see it."""
        store_id = await self.orders.store_of_order(order_id, claims.may_read_store)
        if write:
            claims.require(claims.may_write_orders(store_id), f"change orders of {store_id!r}")
        return store_id

    # -- submit ----------------------------------------------------------------------------
    async def submit_one(self, claims: Claims, order: Order) -> tuple[int, SubmitResult]:
        claims.require(
            claims.may_write_orders(order.store_id), f"submit to store {order.store_id!r}"
        )
        created, result = await self.orders.submit(order)
        (self._created if created else self._duplicate).inc()
        return (202 if created else 200), result

    async def batch_item(self, claims: Claims, raw: dict[str, Any]) -> BatchResult:
        try:
            order = Order.model_validate(raw)
            status, result = await self.submit_one(claims, order)
            return BatchResult(status=status, body=result.model_dump(mode="json"))
        except ValidationError as exc:
            body = Problem(
                title="Invalid order", status=422, errors=tuple(field_errors(exc.errors(), False))
            )
        except BrokerError as exc:
            body = Problem(
                title=exc.title, status=exc.status, detail=exc.detail, errors=with_paths(exc.errors)
            )
        return BatchResult(status=body.status, body=body.model_dump(mode="json", exclude_none=True))


def build_app(api: Api, static_dir: Any | None = None) -> FastAPI:
    app = FastAPI(
        title="passline broker", version="1", docs_url="/docs", openapi_url="/openapi.json"
    )
    _errors(app, api.metrics)
    hq = Depends(api.hq)
    ingest = Depends(api.ingester)
    any_token = Depends(api.claims)
    reader = Depends(api.reader)

    @app.post(
        "/v1/orders",
        openapi_extra=_body_schema("Order"),
        status_code=202,
        response_model=SubmitResult,
        responses={200: {"model": SubmitResult}},
    )
    async def submit(request: Request, claims: Claims = ingest) -> Response:
        # The hot path parses the body itself: pydantic-core from bytes, without
        # FastAPI's per-parameter machinery (about half of a submit's CPU before).
        api.limit(claims)
        try:
            order = Order.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        status, result = await api.submit_one(claims, order)
        return json_response(result, status)

    @app.post(
        "/v1/channels/{adapter}/orders",
        openapi_extra=_body_schema("DeliveryPlatformOrder"),
        status_code=202,
        response_model=SubmitResult,
        responses={200: {"model": SubmitResult}},
    )
    async def channel_order(
        request: Request,
        adapter: Annotated[str, Path(min_length=1, max_length=64, pattern=IDENT)],
        claims: Claims = ingest,
    ) -> Response:
        """A sales channel's own order payload, mapped by its adapter (docs/channels.md);
        answered as ``POST /v1/orders`` answers the ``Order`` it maps to."""
        found = ADAPTERS.get(adapter)
        if found is None:
            raise NotFound(f"no channel adapter {adapter!r}: try one of {sorted(ADAPTERS)}")
        api.limit(claims)
        status, result = await api.submit_one(claims, found.order(await request.body()))
        return json_response(result, status)

    @app.post("/v1/orders:batch", status_code=207, response_model=BatchResponse)
    async def batch(body: BatchRequest, claims: Claims = ingest) -> Response:
        api.limit(claims, len(body.orders))
        results = await asyncio.gather(*(api.batch_item(claims, raw) for raw in body.orders))
        return json_response(BatchResponse(results=tuple(results)), 207)

    @app.post("/v1/orders/{order_id}/amend", response_model=SubmitResult)
    async def amend(order_id: IdParam, body: Amendment, claims: Claims = ingest) -> Response:
        api.limit(claims)
        await api.order_store(claims, order_id, write=True)
        return json_response(await api.orders.amend(order_id, body))

    @app.post("/v1/orders/{order_id}/cancel", response_model=SubmitResult)
    async def cancel(
        order_id: IdParam, body: CancelRequest | None = None, claims: Claims = ingest
    ) -> Response:
        api.limit(claims)
        await api.order_store(claims, order_id, write=True)
        _, result = await api.orders.cancel(order_id, body or CancelRequest())
        return json_response(result)

    @app.post("/v1/orders/{order_id}/reprint", status_code=202, response_model=SubmitResult)
    async def reprint(
        order_id: IdParam, body: ReprintRequest | None = None, claims: Claims = any_token
    ) -> Response:
        claims.require(claims.scope in (Scope.INGEST, Scope.HQ), "reprint")
        if claims.scope is Scope.INGEST:
            api.limit(claims)
            await api.order_store(claims, order_id, write=True)
        return json_response(await api.orders.reprint(order_id, body or ReprintRequest()), 202)

    @app.post("/v1/orders/{order_id}/fire", response_model=SubmitResult)
    async def fire(order_id: IdParam, claims: Claims = any_token) -> Response:
        """A scheduled order to its stations and printers now (docs/kds.md#scheduled-orders):
        its tickets and jobs; an order that fired already (or never was held) answers
        ``duplicate`` with none."""
        claims.require(claims.scope in (Scope.INGEST, Scope.HQ), "fire orders")
        if claims.scope is Scope.INGEST:
            api.limit(claims)
            await api.order_store(claims, order_id, write=True)
        _, result = await api.orders.fire(order_id, claims.may_read_store)
        return json_response(result)

    @app.get("/v1/orders/{order_id}", response_model=OrderView)
    async def get_order(order_id: IdParam, claims: Claims = reader) -> Response:
        return json_response(await api.orders.order_view(order_id, claims.may_read_store))

    @app.get("/v1/jobs/{job_id}", response_model=JobView)
    async def get_job(job_id: IdParam, claims: Claims = reader) -> Response:
        return json_response(await api.orders.job_view(job_id, claims.may_read_store))

    @app.get("/v1/stores", response_model=list[StoreView])
    async def stores(
        request: Request,
        limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
        after: Annotated[str | None, Query(min_length=1, max_length=64, pattern=IDENT)] = None,
        claims: Claims = hq,
    ) -> Response:
        """Stores by id; with ``limit``, a page, and ``Link: <…>; rel="next"`` while more
        follow (``after`` = the last store id of the page before)."""
        if limit is None:  # every store: streamed a page at a time, never one 20 MB string
            pages = api.fleet.store_pages(after=after)
            return StreamingResponse(_json_array(pages), media_type="application/json")
        parts: list[str] = []
        n, last, more = 0, "", False
        async for page in api.fleet.store_pages(after=after):  # the loop turns between pages
            more = n + len(page) > limit  # one more than asked: more follow
            page = page[: limit - n]
            if page:
                parts.append(",".join(v.model_dump_json() for v in page))  # each store once
                n, last = n + len(page), page[-1].store_id
            if more:
                break
        return _page(request, parts, {"after": last, "limit": limit} if more else None)

    @app.get("/v1/stores/{store_id}", response_model=StoreView)
    async def store(store_id: IdParam, claims: Claims = hq) -> Response:
        views = await api.fleet.store_views(store_id)
        if not views:
            return problem(404, "Not found", f"no store {store_id!r}")
        return json_response(views[0])

    @app.put("/v1/stores/{store_id}/config", response_model=ConfigResult)
    async def put_config(store_id: IdParam, body: StoreConfig, claims: Claims = hq) -> Response:
        return json_response(await api.orders.put_config(store_id, body))

    @app.post("/v1/tokens/revoke", response_model=RevokeResult)
    async def revoke_token(body: TokenRevocation, claims: Claims = hq) -> Response:
        # The jti alone says nothing of the token's expiry: keep the entry as long as
        # any token issued until now may live (docs/security.md#revocation).
        until = int(time.time()) + MAX_TTL_S
        await api.revocations.revoke(body.jti, until)
        log.info("jti=%s revoked by %s", body.jti, claims.sub)
        result = RevokeResult(jti=body.jti, until=datetime.fromtimestamp(until, UTC))
        return json_response(result)

    _webhook_routes(app, api, hq)
    _rollout_routes(app, api, hq)
    _report_routes(app, api, hq)

    @app.get("/v1/printers", response_model=list[PrinterView])
    async def printers(
        request: Request,
        state: Annotated[PrinterState | None, Query()] = None,
        store: Annotated[str | None, Query(pattern=IDENT)] = None,
        limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
        after: Annotated[str | None, Query(max_length=129, pattern=PRINTER_CURSOR)] = None,
        claims: Claims = hq,
    ) -> Response:
        """Printers by (store, printer); with ``limit``, a page and a ``Link`` to the next
        (``after`` = the last ``store_id/printer_id`` of the page before)."""
        views = await api.fleet.printer_views(
            state.value if state else None,
            store,
            after=after,
            limit=limit + 1 if limit is not None else None,  # one more: do more follow?
        )
        more = limit is not None and len(views) > limit
        views = views[:limit] if limit is not None else views
        parts = []
        for i in range(0, len(views), DUMP_CHUNK):  # the loop turns between chunks
            parts.append(",".join(v.model_dump_json() for v in views[i : i + DUMP_CHUNK]))
            await asyncio.sleep(0)
        if not more:
            return _page(request, parts, None)
        cursor = f"{views[-1].store_id}/{views[-1].printer_id}"
        query = {"state": state.value if state else None, "store": store, "limit": limit}
        return _page(request, parts, query | {"after": cursor})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            await api.storage.ping()
        except BrokerError as exc:
            headers = {"Retry-After": str(STORAGE_RETRY_AFTER_S)}
            return problem(503, "Not ready", exc.detail, None, headers)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(api.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _static(app, static_dir)
    _openapi_with(app, {"Order": Order, "DeliveryPlatformOrder": DeliveryPlatformOrder})
    return app


def _webhook_routes(app: FastAPI, api: Api, hq: Any) -> None:
    """Subscriptions, their delivery logs and replays (DESIGN.md §8.4, docs/webhooks.md)."""

    def hooks() -> Webhooks:
        if api.webhooks is None:
            raise StorageError("webhooks are not running on this broker")
        return api.webhooks

    def known(webhook_id: str) -> Webhooks:
        webhooks = hooks()
        if webhooks.get(webhook_id) is None:
            raise NotFound(f"no webhook {webhook_id!r}")
        return webhooks

    @app.post("/v1/webhooks", status_code=201, response_model=WebhookCreated)
    async def add_webhook(body: WebhookCreate, claims: Claims = hq) -> Response:
        created = await hooks().create(body)
        log.info("webhook %s added by %s", created.webhook_id, claims.sub)
        return json_response(WebhookCreated(webhook_id=created.webhook_id), 201)

    @app.get("/v1/webhooks", response_model=list[Webhook])
    async def list_webhooks(claims: Claims = hq) -> Response:
        return Response(
            "[" + ",".join(w.model_dump_json() for w in hooks().views()) + "]",
            media_type="application/json",
        )

    @app.delete("/v1/webhooks/{webhook_id}", status_code=204)
    async def delete_webhook(webhook_id: IdParam, claims: Claims = hq) -> Response:
        if not await hooks().delete(webhook_id):
            raise NotFound(f"no webhook {webhook_id!r}")
        return Response(status_code=204)

    @app.get("/v1/webhooks/{webhook_id}/deliveries", response_model=list[Delivery])
    async def deliveries(
        webhook_id: IdParam,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        claims: Claims = hq,
    ) -> Response:
        """The newest deliveries first: event id, status, attempts, last error."""
        found = await known(webhook_id).deliveries(webhook_id, limit)
        return Response(
            "[" + ",".join(d.model_dump_json() for d in found) + "]",
            media_type="application/json",
        )

    @app.post("/v1/webhooks/{webhook_id}/replay", response_model=ReplayResult)
    async def replay(
        webhook_id: IdParam, body: ReplayRequest | None = None, claims: Claims = hq
    ) -> Response:
        n = await known(webhook_id).replay(webhook_id, body or ReplayRequest())
        return json_response(ReplayResult(replayed=n))


def _rollout_routes(app: FastAPI, api: Api, hq: Any) -> None:
    """Gray release by store ring (docs/rollout.md)."""

    def many(items: list[Any]) -> Response:
        body = "[" + ",".join(i.model_dump_json() for i in items) + "]"
        return Response(body, media_type="application/json")

    @app.post("/v1/releases", status_code=201, response_model=Release)
    async def stage(body: ReleaseCreate, claims: Claims = hq) -> Response:
        release = await api.rollout.stage(body)
        log.info("release %s staged by %s", body.release_id, claims.sub)
        return json_response(release, 201)

    @app.get("/v1/releases", response_model=list[Release])
    async def releases(claims: Claims = hq) -> Response:
        return many(await api.rollout.views())

    @app.get("/v1/releases/{release_id}", response_model=Release)
    async def release(release_id: IdParam, claims: Claims = hq) -> Response:
        return json_response(await api.rollout.get(release_id))

    @app.post("/v1/releases/{release_id}/promote", response_model=Release)
    async def promote(release_id: IdParam, body: Promotion, claims: Claims = hq) -> Response:
        return json_response(await api.rollout.promote(release_id, body))

    @app.post("/v1/releases/{release_id}/rollback", response_model=Release)
    async def rollback(release_id: IdParam, claims: Claims = hq) -> Response:
        return json_response(await api.rollout.rollback(release_id))

    @app.get("/v1/rings", response_model=list[RingView])
    async def rings(claims: Claims = hq) -> Response:
        """Each ring's stores, the store client versions they run, the releases on it."""
        return many(await api.rollout.rings())


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


def _report_routes(app: FastAPI, api: Api, hq: Any) -> None:
    """Speed of service (DESIGN.md §8.4, docs/reports.md): hq scope only."""

    @app.get(
        "/v1/reports/sos",
        response_model=SosReport,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    )
    async def sos(
        store: Annotated[str, Query(min_length=1, max_length=64, pattern=IDENT)],
        since: Annotated[str, Query(alias="from", min_length=1, max_length=40)],
        until: Annotated[str, Query(alias="to", min_length=1, max_length=40)],
        format: Annotated[ReportFormat, Query()] = ReportFormat.JSON,
        claims: Claims = hq,
    ) -> Response:
        """A store's time to start, bump and serve per station, hour (on the store's
        wall clock) and channel, over the hours starting in ``[from, to)``. ``from`` and
        ``to`` are times with an offset, or store-local dates (``to`` then counts its
        whole day); at most 31 days. ``format=csv``: the per-channel rows as CSV."""
        if api.sos is None:
            raise StorageError("reports are not running on this broker")
        report = await api.sos.report(store, since, until)
        if format is ReportFormat.CSV:
            name = f"sos-{store}-{report.since.date().isoformat()}.csv"
            headers = {"Content-Disposition": f'attachment; filename="{name}"'}
            return Response(report_csv(report), media_type="text/csv", headers=headers)
        return json_response(report)


def _body_schema(name: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{name}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _openapi_with(app: FastAPI, models: dict[str, type[BaseModel]]) -> None:
    """Add the schemas of bodies that routes parse themselves to the OpenAPI document."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, model in models.items():
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[name] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def broker_problem(exc: BrokerError, metrics: Metrics, where: str) -> Response:
    metrics.requests.labels(str(exc.status)).inc()
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
    elif isinstance(exc, StorageError):  # redis or the disk is back within seconds, or not
        headers["Retry-After"] = str(STORAGE_RETRY_AFTER_S)
    if exc.status >= 500:
        log.error("%s: %s", where, exc.detail)
    return problem(exc.status, exc.title, exc.detail, exc.errors, headers)


def unparsable_body(cause: BaseException) -> dict[str, Any]:
    """FastAPI's 400 for a body its ``json.loads`` could not read (bad UTF-8, nesting past the
    recursion limit, an integer of thousands of digits) as our 422 for the body as a whole,
    like every other body that is not JSON (docs/rest.md#errors-problemjson)."""
    if isinstance(cause, RecursionError):
        why = "nested too deeply"
    elif isinstance(cause, UnicodeDecodeError):
        why = "not UTF-8"
    else:
        why = str(cause)[:200]
    return {"type": "json_invalid", "loc": (), "msg": f"Invalid JSON: {why}"}


def validation_problem(raw_errors: list[Any], metrics: Metrics) -> Response:
    metrics.requests.labels("422").inc()
    errors = field_errors(raw_errors)
    return problem(422, "Invalid request", validation_detail(errors), errors)


def _errors(app: FastAPI, metrics: Metrics) -> None:
    async def broker_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BrokerError)
        return broker_problem(exc, metrics, f"{request.method} {request.url.path}")

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(list(exc.errors()), metrics)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.__cause__ is not None:
            return validation_problem([unparsable_body(exc.__cause__)], metrics)
        metrics.requests.labels(str(exc.status_code)).inc()
        return problem(exc.status_code, str(exc.detail), None, None, dict(exc.headers or {}))

    app.add_exception_handler(BrokerError, broker_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _static(app: FastAPI, static_dir: Any | None) -> None:
    """The browser apps, once kds_web ships them (``STATIC_DIR/kds``, ``STATIC_DIR/hq``,
    ``STATIC_DIR/board``: the pickup board, docs/kds.md#pickup-board)."""
    from pathlib import Path as FsPath

    from fastapi.staticfiles import StaticFiles

    if static_dir is None:
        return
    for name in ("kds", "hq", "board"):
        folder = FsPath(static_dir) / name
        if folder.is_dir():
            app.mount(f"/{name}", StaticFiles(directory=folder, html=True), name=name)
