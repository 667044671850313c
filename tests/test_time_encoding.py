import math

import pytest
import torch

from model.config import ModelConfig
from model.time_encoding import TimeEncoding


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
