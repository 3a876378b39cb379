"""Drifting traffic: scenario files, the request stream they define, and the Locust player."""
