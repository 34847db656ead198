"""The analyst's pages: the alert queue, one alert (label it there), the overview.

Reads and the label go through the analyst role's connections (`request.app.state.pool`);
one alert's detail, the status counts and labelling are `ReviewRepository`'s (the same SQL as
`fraudstream review`); the rest is `queries`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from jobs.cli.review.repository import (
    LABELS,
    MAX_NOTE_CHARS,
    AlertNotFound,
    InvalidReview,
    ReviewRepository,
)
from jobs.console import queries, views
from jobs.console.web import page_user, render, require_csrf

router = APIRouter()
MODEL_LIST_TTL_S = 60.0


@router.get("/")
def home(user: str = Depends(page_user)) -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue")
def queue(request: Request, user: str = Depends(page_user)) -> Response:
    try:
        wanted = queries.QueueFilter.from_params(request.query_params)
    except queries.InvalidFilter as exc:
        wanted, error = queries.QueueFilter(), str(exc)
    else:
        error = None
    with request.app.state.pool.connection() as conn:
        page = queries.queue_page(conn, wanted)
        models = _model_versions(request, conn)
        counts = ReviewRepository(conn).count_by_status()
    if wanted.model_version and wanted.model_version not in models:
        models = [*models, wanted.model_version]  # newer than the cached list
    return render(request, "queue.html", status_code=400 if error else 200, page=page,
                  f=wanted, models=models, counts=counts, ages=list(queries.AGES),
                  error=error, statuses=("open", "in_review", "closed", "all"))


def _model_versions(request: Request, conn: object) -> list[str]:
    """The queue's model choices, read at most once a minute (a scan of every alert)."""
    cached = getattr(request.app.state, "model_versions", None)
    now = time.monotonic()
    if cached is None or now - cached[0] > MODEL_LIST_TTL_S:
        cached = request.app.state.model_versions = (now, queries.alert_model_versions(conn))
    return cached[1]


@router.get("/alert")
def alert(request: Request, id: str = "", user: str = Depends(page_user)) -> Response:  # noqa: A002
    with request.app.state.pool.connection() as conn:
        repo = ReviewRepository(conn)
        try:
            detail = repo.get(id)
        except AlertNotFound:
            return render(request, "error.html", status_code=404, title="No such alert",
                          message=f"There is no alert with transaction id {id!r}.")
        card = queries.alert_card_token(conn, id)
        events = queries.card_timeline(conn, card, detail.event_time) if card else []
        upcoming = [a for a in repo.list_alerts(status="open", limit=2)
                    if a.transaction_id != id][:1]
    features = detail.features or {}
    distance = features.get("distance_from_home_km")
    usual = views.median([e.distance_km for e in events
                          if e.transaction_id != id and e.distance_km is not None])
    scale = max(distance or 0.0, usual or 0.0, 1.0)
    return render(
        request, "alert.html", a=detail, bars=views.reason_bars(detail.reasons),
        features=views.feature_rows(features), timeline=views.timeline(events, id),
        events=events[-15:], distance=distance, usual_distance=usual,
        distance_width=round((distance or 0.0) / scale * views.BAR_WIDTH),
        usual_width=round((usual or 0.0) / scale * views.BAR_WIDTH),
        next_id=upcoming[0].transaction_id if upcoming else None,
        labelled=request.query_params.get("labelled") == "1", labels=LABELS,
        max_note=MAX_NOTE_CHARS,
    )


@router.post("/alert/label", dependencies=[Depends(require_csrf)])
def label(
    request: Request,
    id: str = Form(..., max_length=200),  # noqa: A002 - form field name
    label: str = Form(..., max_length=20),
    note: str = Form("", max_length=MAX_NOTE_CHARS),
    user: str = Depends(page_user),
) -> Response:
    with request.app.state.pool.connection() as conn:
        try:
            ReviewRepository(conn).label(id, label, reviewer=user, at=datetime.now(UTC),
                                         note=note.strip() or None)
        except AlertNotFound:
            return render(request, "error.html", status_code=404, title="No such alert",
                          message=f"There is no alert with transaction id {id!r}.")
        except InvalidReview as exc:
            return render(request, "error.html", status_code=400, title="Not labelled",
                          message=str(exc))
    return RedirectResponse("/alert?" + urlencode({"id": id, "labelled": "1"}),
                            status_code=303)


@router.get("/overview")
def overview(request: Request, user: str = Depends(page_user)) -> Response:
    with request.app.state.pool.connection() as conn:
        hourly = queries.alerts_per_hour(conn)
        models = queries.review_by_model(conn)
        dead = queries.dead_letters_by_reason(conn)
        shadows = queries.shadow_summary(conn)
        drift = queries.feature_drift(conn)
        counts = ReviewRepository(conn).count_by_status()
    labelled = sum(m.labelled for m in models)
    fraud = sum(m.fraud for m in models)
    return render(
        request, "overview.html", chart=views.hour_bars(hourly, datetime.now(UTC)),
        hourly_total=sum(n for _, n in hourly), models=models, dead=dead, shadows=shadows,
        drift=drift, counts=counts, labelled=labelled,
        precision=fraud / labelled if labelled else None,
    )
