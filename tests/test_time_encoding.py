import math

import numpy as np
import pytest
import torch

from pasrec.model.config import ModelConfig
from pasrec.model.time_encoding import TimeEncoding
from pasrec.training.encoding_resolution import history_similarity, similarity_by_gap


def encoder(kind: str, hidden: int = 4, **kw) -> TimeEncoding:
    return TimeEncoding(ModelConfig(hidden=hidden, heads=2, time_encoding=kind, **kw))


def test_sinusoidal_matches_hand_computed_values():
    enc = encoder("sinusoidal", sinusoid_base=10000.0)
    t = 0.5
    expected = [math.sin(t), math.cos(t), math.sin(t / 100.0), math.cos(t / 100.0)]
    got = enc(torch.tensor([[t]]))[0, 0].tolist()
    assert got == pytest.approx(expected, rel=1e-6)


def test_gaussian_matches_hand_computed_values():
    enc = encoder("gaussian", gaussian_sigma=0.05)
    t = 0.4
    centers = [0.0, 1 / 3, 2 / 3, 1.0]
    expected = [math.exp(-((t - c) ** 2) / (2 * 0.05**2)) for c in centers]
    assert enc(torch.tensor([[t]]))[0, 0].tolist() == pytest.approx(expected, rel=1e-5)


def test_rff_uses_its_seeded_frequencies():
    enc = encoder("rff", rff_sigma=1.0, seed=3)
    b = enc.rff_freqs.tolist()
    t = 0.3
    expected = [
        math.cos(2 * math.pi * b[0] * t),
        math.cos(2 * math.pi * b[1] * t),
        math.sin(2 * math.pi * b[0] * t),
        math.sin(2 * math.pi * b[1] * t),
    ]
    assert enc(torch.tensor([[t]]))[0, 0].tolist() == pytest.approx(expected, rel=1e-5)
    # A different seed draws different frequencies; the same seed the same ones.
    assert encoder("rff", seed=4).rff_freqs.tolist() != b
    assert encoder("rff", seed=3).rff_freqs.tolist() == b


def test_position_ignores_time_but_not_slot():
    enc = encoder("position", history_length=3)
    a = enc(torch.tensor([[0.1, 0.2, 0.3]]))
    b = enc(torch.tensor([[0.9, 0.8, 0.7]]))
    assert torch.equal(a, b)
    assert not torch.equal(a[0, 0], a[0, 1])


@pytest.mark.parametrize("kind", ["sinusoidal", "gaussian", "rff"])
def test_real_time_encodings_accept_future_times(kind):
    out = encoder(kind)(torch.tensor([[1.7, 25.0]]))
    assert torch.isfinite(out).all()


def _rff_cosine(enc: TimeEncoding, gap: float) -> float:
    """cos([cos a, sin a], [cos a', sin a']) = mean_k cos(a_k - a'_k) for RFF, any t."""
    return sum(math.cos(2 * math.pi * b * gap) for b in enc.rff_freqs.tolist()) / len(enc.rff_freqs)


def test_similarity_by_gap_is_the_rff_closed_form():
    enc = encoder("rff", hidden=8, rff_sigma=50.0, seed=1)
    span = 1000.0
    got = similarity_by_gap(enc, np.array([0.1, 0.4, 0.9]), span, [7.0, 30.0])
    assert got[7.0] == pytest.approx(_rff_cosine(enc, 7 / span), abs=1e-5)
    assert got[30.0] == pytest.approx(_rff_cosine(enc, 30 / span), abs=1e-5)


def test_history_similarity_skips_padding_and_single_items():
    enc = encoder("rff", hidden=8, rff_sigma=50.0, seed=1)
    t, g = 0.5, 0.01
    # Padded slots hold time 0: were they counted, pairs with time 0 would enter both figures.
    times = np.array([[0.0, t, t + g], [0.0, t, t + g], [t, t + g, t + 2 * g], [0.0, 0.0, t]])
    valid = np.array([[False, True, True], [False, True, True], [True, True, True],
                      [False, False, True]])  # fmt: skip
    got = history_similarity(enc, times, valid)
    # Consecutive pairs: all four are g apart. First vs last: g, g, 2g (the single item skipped).
    assert got["adjacent_median"] == pytest.approx(_rff_cosine(enc, g), abs=1e-5)
    assert got["first_last_median"] == pytest.approx(_rff_cosine(enc, g), abs=1e-5)
    assert _rff_cosine(enc, 2 * g) != pytest.approx(_rff_cosine(enc, g), abs=1e-3)
