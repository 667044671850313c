"""Replays of an interaction log through the real service, and the newcomer demo.

Above both `training` (it trains or loads the model) and `service` (it drives the real app);
neither of them imports this package."""
