"""The churn model and everything around it that a candidate should not need to touch."""
