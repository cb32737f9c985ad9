"""The Starlette application of ``watcher serve``: routes, the write token, headers.

Reading is open to whoever reaches the port (bind it to 127.0.0.1 or put it
behind a proxy that authenticates). Writing (adding watches, changing their
interval or tags, pausing, resuming) needs ``Authorization: Bearer
<WATCHER_SERVE_TOKEN>``; with no token set every write is refused (403), so
the default server cannot change anything. Bearer tokens are never sent by a browser on its own, so a hostile
page cannot forge a write (no CSRF).

Every response carries a strict CSP (only this server's stylesheet and
script), ``nosniff`` and ``no-referrer``, the 500 page included: the headers
are added by :class:`SecurityHeaders`, outside Starlette's error handling. An
unexpected error (the database down, a bug) is a plain "Internal Server
Error" without details, so neither the database URL nor a stack trace ever
reaches a client; client mistakes (a bad cursor, an empty query) are a 400
that says what to fix. Endpoints are plain functions: Starlette runs them in
its thread pool, where the store's synchronous sessions belong.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watcher import api
from watcher.article import parse_article
from watcher.errors import StoreError, WatcherError
from watcher.search import Hit, TextIndex
from watcher.store import KEEP, Keep, Store, WatchRecord
from watcher.web import jsonapi, pages
from watcher.web.markup import SCRIPT, SCRIPT_PATH, STYLE, STYLE_PATH
from watcher.web.queries import (
    Filters,
    VersionRow,
    WatchRow,
    article_history,
    changes_page,
    choices,
    filter_rows,
    paginate,
    parse_kind,
    parse_limit,
    shown_state,
    version_rows,
    versions_page,
    watch_rows,
    watches_page,
)

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
SEARCH_LIMIT = 20
MAX_URLS = 1000  # per POST /api/watches


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BadRequest(Exception):
    """A client's mistake, said in its message (never a store error's text)."""


def _client_error(exc: WatcherError) -> BadRequest:
    """A WatcherError as a 400; a StoreError (whose text may name the
    database) is re-raised, to become a plain 500."""
    if isinstance(exc, StoreError):
        raise exc
    # the API's own words for what the command line calls options
    message = str(exc).replace("--tag and --untag", "tag and untag")
    return BadRequest(message.replace("--interval", "interval"))


def parse_since(text: str | None) -> int | None:
    """``?since=``: epoch milliseconds, or an ISO 8601 time (UTC unless it says)."""
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest("since must be epoch milliseconds or an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


class Handlers:
    """The endpoints, over one store, one search index and the write token."""

    def __init__(self, store: Store, index: TextIndex, token: str) -> None:
        self.store = store
        self.index = index
        self.token = token

    # -- HTML ------------------------------------------------------------------------------

    def index_page(self, request: Request) -> Response:
        filters = Filters.from_params(request.query_params)
        rows = watch_rows(self.store)
        listed = paginate(
            filter_rows(rows, filters),
            WatchRow.sort_key,
            parse_limit(request.query_params.get("limit")),
            request.query_params.get("cursor"),
        )
        return HTMLResponse(pages.render_index(listed, choices(rows), filters))

    def article_page(self, request: Request) -> Response:
        watch = self._watch(request.path_params["watch_id"])
        if watch is None:
            return _not_found("No such article")
        history = article_history(self.store, watch)
        state = shown_state(str(watch.state), history.latest_change)
        return HTMLResponse(pages.render_article(history, state))

    def version_page(self, request: Request) -> Response:
        found = self._version(request.path_params["version_id"])
        if found is None:
            return _not_found("No such version")
        watch, rows, at = found
        row = rows[at]
        article = parse_article(self.store.version_snapshot(row.version))
        before = rows[at - 1].version if at > 0 else None
        after = rows[at + 1].version if at + 1 < len(rows) else None
        html = pages.render_version(row.version, watch, article, row.change, (before, after))
        return HTMLResponse(html)

    def search_page(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        filters = Filters.from_params(request.query_params)
        rows = watch_rows(self.store)
        options = choices(rows)
        if not query:
            return HTMLResponse(pages.render_search("", filters, options, []))
        try:
            hits, cursor, message = self._search(request, query, filters, rows)
        except BadRequest as exc:  # the page says what to fix, beside the form
            hits, cursor, message = [], None, str(exc)
        return HTMLResponse(
            pages.render_search(query, filters, options, hits, next_cursor=cursor, message=message)
        )

    # -- JSON -----------------------------------------------------------------------------

    def api_watches(self, request: Request) -> Response:
        filters = Filters.from_params(request.query_params)
        listed = watches_page(
            self.store,
            filters,
            parse_limit(request.query_params.get("limit")),
            request.query_params.get("cursor"),
        )
        return JSONResponse(jsonapi.page([jsonapi.watch(r) for r in listed.items], listed))

    def api_changes(self, request: Request) -> Response:
        params = request.query_params
        listed = changes_page(
            self.store,
            since_ms=parse_since(params.get("since")),
            kind=parse_kind(params.get("kind")),
            limit=parse_limit(params.get("limit")),
            cursor=params.get("cursor"),
        )
        body = jsonapi.page([jsonapi.change(c, record=True) for c in listed.items], listed)
        return JSONResponse({**body, "poll_cursor": listed.poll_cursor})

    def api_versions(self, request: Request) -> Response:
        watch = self._watch(request.path_params["watch_id"])
        if watch is None:
            return _json_error(404, "no such article")
        listed = versions_page(
            self.store,
            watch.id,
            parse_limit(request.query_params.get("limit")),
            request.query_params.get("cursor"),
        )
        return JSONResponse(jsonapi.page([jsonapi.version_row(r) for r in listed.items], listed))

    def api_version(self, request: Request) -> Response:
        found = self._version(request.path_params["version_id"])
        if found is None:
            return _json_error(404, "no such version")
        watch, rows, at = found
        row = rows[at]
        article = parse_article(self.store.version_snapshot(row.version))
        return JSONResponse(jsonapi.version_detail(row.version, row.change, watch.url, article))

    def api_search(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        filters = Filters.from_params(request.query_params)
        hits, cursor, message = self._search(request, query, filters, watch_rows(self.store))
        body: dict[str, Any] = {"items": [jsonapi.hit(h, url) for h, url in hits],
                                "next_cursor": cursor}  # fmt: skip
        if message:
            body["message"] = message
        return JSONResponse(body)

    # -- writes -----------------------------------------------------------------------------

    async def api_add(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        urls, tags, interval = _add_request(await _json(request, ADD_EXAMPLE))
        try:
            results = await run_in_threadpool(self._add, urls, tags, interval)
        except WatcherError as exc:
            raise _client_error(exc) from None
        return JSONResponse({"items": results})

    async def api_set(self, request: Request) -> Response:
        """``PATCH /api/watches/{id}``: what ``watcher set`` does, for one watch."""
        refused = self._refuse(request)
        if refused is not None:
            return refused
        interval, tag, untag = _set_request(await _json(request, SET_EXAMPLE))
        watch = self._watch(request.path_params["watch_id"])
        if watch is None:
            return _json_error(404, "no such watch")
        try:
            await run_in_threadpool(self._set, watch.url, interval, tag, untag)
        except WatcherError as exc:
            return _json_error(409, str(_client_error(exc)))
        after = self.store.get_watch_by_id(watch.id)
        return JSONResponse(jsonapi.watch_record(after or watch))

    def _set(self, url: str, interval: str | None, tag: list[str], untag: list[str]) -> None:
        every: float | Keep | None = KEEP if interval is None else api.parse_interval(interval)
        api.set_watches(self.store, [url], interval_s=every, add_tags=tag, remove_tags=untag)

    def api_pause(self, request: Request) -> Response:
        return self._set_paused(request, True)

    def api_resume(self, request: Request) -> Response:
        return self._set_paused(request, False)

    def _set_paused(self, request: Request, paused: bool) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        watch = self._watch(request.path_params["watch_id"])
        if watch is None:
            return _json_error(404, "no such watch")
        try:
            api.set_paused(self.store, watch.url, paused)
        except WatcherError as exc:
            error = _client_error(exc)
            return _json_error(409, str(error))
        after = self.store.get_watch_by_id(watch.id)
        return JSONResponse(jsonapi.watch_record(after or watch))

    def _add(self, urls: list[str], tags: list[str], interval: str | None) -> list[dict[str, Any]]:
        interval_s = api.parse_interval(interval) if interval else None
        added = api.add_watches(self.store, urls, interval_s=interval_s, tags=tags)
        return [
            {"url": a.url, "created": a.created, "error": a.error, "reactivated": a.reactivated,
             "tags_added": list(a.tags_added), "interval_kept": a.interval_kept}
            for a in added
        ]  # fmt: skip

    def _refuse(self, request: Request) -> Response | None:
        """Why this write is refused (no token configured: 403; a missing or
        wrong one: 401), or None. Compared in constant time."""
        if not self.token:
            return _json_error(403, "writes are disabled: set WATCHER_SERVE_TOKEN to allow them")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), self.token.encode("utf-8")
        )
        if ok:
            return None
        response = _json_error(401, "a valid Authorization: Bearer token is needed")
        response.headers["WWW-Authenticate"] = 'Bearer realm="watcher"'
        return response

    # -- shared -----------------------------------------------------------------------------

    def _watch(self, watch_id: int) -> WatchRecord | None:
        return self.store.get_watch_by_id(watch_id)

    def _version(self, version_id: int) -> tuple[WatchRecord, list[VersionRow], int] | None:
        """The version's watch, the watch's version rows and the version's place."""
        version = self.store.get_version(version_id)
        watch = self.store.get_watch_by_id(version.watch_id) if version else None
        if version is None or watch is None:
            return None
        rows = version_rows(self.store, watch.id)
        at = next(i for i, r in enumerate(rows) if r.version.id == version.id)
        return watch, rows, at

    def _search(
        self, request: Request, query: str, filters: Filters, rows: list[WatchRow]
    ) -> tuple[list[tuple[Hit, str]], str | None, str | None]:
        """Hits with their watch's URL, the next cursor, and what to tell the
        reader; BadRequest for the client's mistakes."""
        try:
            complete = self.index.catch_up(self.store)
        except StoreError as exc:  # e.g. a role that may read but not write the index
            log.error("search index: cannot catch up, searching it as it is: %s", exc)
            complete = False
        urls = {r.watch.id: r.watch.url for r in rows}
        admitted = None
        if filters.on_watches:
            on_watches = Filters(filters.site, filters.tag, filters.state)
            admitted = [r.watch.id for r in filter_rows(rows, on_watches, hide_removed=False)]
        try:
            found = self.index.search(
                query,
                watch_ids=admitted,
                kind=filters.kind,
                limit=parse_limit(request.query_params.get("limit") or str(SEARCH_LIMIT)),
                cursor=request.query_params.get("cursor"),
            )
        except WatcherError as exc:  # an empty query, a bad cursor: a 400 in the API
            raise _client_error(exc) from None
        hits = [(h, urls[h.watch_id]) for h in found.hits if h.watch_id in urls]
        message = None if complete else "the search index is still being built: results so far"
        return hits, found.next_cursor, message


def _add_request(payload: Any) -> tuple[list[str], list[str], str | None]:
    """``{"urls": [...], "tags": [...], "interval": "10m"}``, checked."""
    if not isinstance(payload, dict):
        raise BadRequest("send a JSON object with a list of urls")
    urls, tags, interval = payload.get("urls"), payload.get("tags", []), payload.get("interval")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise BadRequest("urls must be a non-empty list of strings")
    if len(urls) > MAX_URLS:
        raise BadRequest(f"at most {MAX_URLS} urls at once")
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise BadRequest("tags must be a list of strings")
    if interval is not None and not isinstance(interval, str):
        raise BadRequest('interval must be a string such as "10m" or "adaptive"')
    return urls, tags, interval


ADD_EXAMPLE = 'send JSON: {"urls": ["https://…"], "tags": [], "interval": "10m"}'
SET_EXAMPLE = 'send JSON such as {"interval": "30m", "tag": ["desk"], "untag": ["draft"]}'


async def _json(request: Request, example: str) -> Any:
    """The request's JSON body; a 400 showing ``example`` if it is not JSON."""
    try:
        return await request.json()
    except ValueError:
        raise BadRequest(example) from None


def _set_request(payload: Any) -> tuple[str | None, list[str], list[str]]:
    """``{"interval": "30m" | "adaptive", "tag": [...], "untag": [...]}``, checked."""
    if not isinstance(payload, dict) or not payload.keys() & {"interval", "tag", "untag"}:
        raise BadRequest(SET_EXAMPLE)
    if unknown := sorted(payload.keys() - {"interval", "tag", "untag"}):
        raise BadRequest(f"unknown field {unknown[0]!r}: {SET_EXAMPLE}")
    interval, tag, untag = payload.get("interval"), payload.get("tag", []), payload.get("untag", [])
    if interval is not None and not isinstance(interval, str):
        raise BadRequest('interval must be a string such as "10m" or "adaptive"')
    for name, value in (("tag", tag), ("untag", untag)):
        if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
            raise BadRequest(f"{name} must be a list of strings")
    return interval, tag, untag


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _not_found(title: str) -> HTMLResponse:
    return HTMLResponse(pages.render_message(title, "It is not in the database."), 404)


def _bad_request_handler(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return _json_error(400, str(exc))
    return HTMLResponse(pages.render_message("Bad request", str(exc)), 400)


def _watcher_error_handler(request: Request, exc: Exception) -> Response:
    """A WatcherError no endpoint turned into a 400: a client's mistake
    (limit, cursor), unless it is the store's, which stays a plain 500."""
    if isinstance(exc, StoreError):
        log.error("database error while serving %s: %s", request.url.path, exc)
        return PlainTextResponse("Internal Server Error", status_code=500)
    return _bad_request_handler(request, exc)


def _static(text: str, media_type: str) -> Callable[[Request], Response]:
    def serve(request: Request) -> Response:
        return Response(text, media_type=media_type,
                        headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip

    return serve


def create_app(store: Store, index: TextIndex, *, token: str = "") -> ASGIApp:
    """The ASGI application over ``store``; writes need ``token`` (empty: refused)."""
    h = Handlers(store, index, token)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The first build of a large index takes minutes: in the background,
        # searches meanwhile use what is indexed so far.
        threading.Thread(target=_reconcile, args=(index, store), daemon=True,
                         name="search-index").start()  # fmt: skip
        yield

    routes = [
        Route("/", h.index_page),
        Route("/articles/{watch_id:int}", h.article_page),
        Route("/versions/{version_id:int}", h.version_page),
        Route("/search", h.search_page),
        Route(STYLE_PATH, _static(STYLE, "text/css; charset=utf-8")),
        Route(SCRIPT_PATH, _static(SCRIPT, "text/javascript; charset=utf-8")),
        Route("/api/watches", h.api_watches, methods=["GET"]),
        Route("/api/watches", h.api_add, methods=["POST"]),
        Route("/api/watches/{watch_id:int}", h.api_set, methods=["PATCH"]),
        Route("/api/watches/{watch_id:int}/pause", h.api_pause, methods=["POST"]),
        Route("/api/watches/{watch_id:int}/resume", h.api_resume, methods=["POST"]),
        Route("/api/changes", h.api_changes),
        Route("/api/articles/{watch_id:int}/versions", h.api_versions),
        Route("/api/versions/{version_id:int}", h.api_version),
        Route("/api/search", h.api_search),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            BadRequest: _bad_request_handler,
            WatcherError: _watcher_error_handler,
        },
    )
    return SecurityHeaders(app)


def _reconcile(index: TextIndex, store: Store) -> None:
    try:
        index.reconcile(store)
    except Exception:
        log.exception("search index: the first catch-up failed; searches will retry")
