"""`fraudstream review`: analysts list, show, label and export the alerts in Postgres.

`repository` is the SQL (analyst role), `render` the terminal views, `commands` the typer layer.
"""
