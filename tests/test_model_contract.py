"""The model contract (pasrec/model/interfaces.py): every architecture is a `Recommender`,
ToI models follow the `TimeOfInterest` protocol, and code outside `pasrec/model` calls the
contract, never a model's parts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from pasrec.model.config import ARCHITECTURES, ModelConfig, preset
from pasrec.model.interfaces import Recommender, TimeOfInterest, time_of_interest
from pasrec.model.registry import MODEL_CLASSES, build_model

PACKAGE = Path(__file__).resolve().parents[1] / "pasrec"
# A model's parts: what the trainer, ToI evaluation and predictor once reached into.
PARTS = {"tpp", "user_state", "toi_from_state", "time_encoding", "encoder", "denoiser", "fusion"}
BATCH = {
    "items": torch.tensor([[0, 1, 2], [3, 4, 5]]),
    "times": torch.tensor([[0.0, 0.1, 0.2]] * 2),
}


def test_the_registry_builds_every_architecture_as_a_recommender() -> None:
    assert set(MODEL_CLASSES) == set(ARCHITECTURES)
    for architecture in ARCHITECTURES:
        kernels = {"meantime_kernels": "pos,day"} if architecture == "meantime" else {}
        config = ModelConfig(architecture=architecture, n_items=6, hidden=8, heads=2,
                             history_length=3, **kernels)  # fmt: skip
        model = build_model(config).eval()
        assert isinstance(model, Recommender), architecture
        model.fit_statistics(torch.tensor([1, 1, 2]))
        scores = model.score(BATCH)
        assert scores.shape == (2, 7) and torch.isinf(scores[:, 0]).all(), architecture
        assert model.fitted_state() == {}, architecture


def test_popularity_is_fitted_through_the_common_interface() -> None:
    model = build_model(preset("popularity", n_items=4, history_length=3))
    model.fit_statistics(torch.tensor([3, 3, 1]))
    assert model.score(BATCH)[0].argmax().item() == 3
    assert time_of_interest(model) is None


@pytest.mark.parametrize(("name", "forecasts"), [("pasrec", True), ("pasrec-te", False),
                                                  ("gru4rec", False), ("preferdiff", False)])
def test_time_of_interest_is_offered_exactly_by_models_with_the_module(name, forecasts) -> None:
    model = build_model(preset(name, n_items=6, hidden=8, history_length=3))
    toi = time_of_interest(model)
    assert (toi is not None) == forecasts
    if toi is not None:
        assert isinstance(toi, TimeOfInterest)
        assert toi.predict_toi(BATCH).shape == (2, 8)
        assert toi.encode_times(torch.tensor([0.1, 0.3])).shape == (2, 8)
        assert toi.gap_distribution(BATCH) is None and not toi.has_gap_head


def _reached_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in PARTS
        and isinstance(node.value, ast.Name) and node.value.id in {"model", "toi"}
    }  # fmt: skip


def test_training_and_serving_do_not_reach_into_a_model() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): parts
        for layer in ("training", "service", "replay", "cli")
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        if (parts := _reached_parts(path))
    }
    assert offenders == {}


def test_the_part_check_sees_a_planted_reach(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("def f(model, batch):\n    return model.tpp.nll(model.user_state(batch))\n")
    assert _reached_parts(planted) == {"tpp", "user_state"}
