"""The timing strategies a replay compares (kept apart so the CLI can list them cheaply)."""

STRATEGIES = ("toi", "tpp_median", "tpp_window", "fixed", "user_median", "passive")
