"""The timing strategies a replay compares (kept apart so the CLI can list them cheaply)."""

STRATEGIES = ("toi", "tpp_median", "fixed", "user_median", "passive")
