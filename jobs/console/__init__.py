"""The analyst console (`fraudstream console`): a small web application on loopback.

Server-rendered pages (FastAPI + Jinja2, no JavaScript build; one static script for keyboard
shortcuts) over Postgres as the analyst role: the alert queue, one alert with its reasons,
the card's history and its features, labelling, an overview; and `POST /api/score`, what-if
scoring of a transaction with the card's history rebuilt from Postgres.

Modules: `app` (application, security headers, server), `auth` (users, sessions, CSRF),
`web` (what routes share), `routes_auth` / `routes_pages` / `routes_api`, `queries` (SQL),
`whatif` (state rebuild and scoring), `views` (chart geometry, filters), `db` (connections).
"""
