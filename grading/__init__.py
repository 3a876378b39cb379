"""The grader: scores a session from Prometheus (and Grafana) against the scenario's hidden truth."""
