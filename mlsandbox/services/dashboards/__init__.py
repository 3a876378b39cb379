"""The candidate's dashboards drawn from their queries, without Grafana: the panel data (render.py), one static
page (preview.py, `mlsandbox dashboards preview`), and the live view in a candidate's room (app.py); the console
draws the same panels on its room pages."""
