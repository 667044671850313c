"""BERT4Rec, TiSASRec, MEANTIME and DiffuRec: hand-computed temporal parts, checkpoints, and
learning on a real MovieLens slice."""

import math

import numpy as np
import pytest
import torch
from data_sources import reference_data

from pasrec.model.checkpoint import load_checkpoint, save_checkpoint
from pasrec.model.config import preset
from pasrec.model.registry import build_model
from pasrec.model.relative_attention import days_from_times
from pasrec.model.time_norm import TimeNormalizer
from pasrec.model.tisasrec import interval_matrix
from pasrec.training.loaders import Interactions, load_interactions
from pasrec.training.preprocess import build_sequences
from pasrec.training.splits import split_loo
from pasrec.training.trainer import TrainConfig, evaluate, seed_everything, train

BASELINES = ("bert4rec", "tisasrec", "meantime", "diffurec")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: with several OpenMP threads on a busy machine, spinning costs seconds."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def toy_batch() -> dict[str, torch.Tensor]:
    return {
        "items": torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7], [0, 0, 8, 9]]),
        "times": torch.tensor([[0, 0.1, 0.2, 0.3], [0.1, 0.2, 0.35, 0.4], [0, 0, 0.5, 0.6]]),
        "target": torch.tensor([10, 11, 12]),
        "target_time": torch.tensor([0.35, 0.5, 0.7]),
    }


def small(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    values = {"n_items": 12, "hidden": 16, "history_length": 4, "span_days": 20.0, **kw}
    return build_model(preset(name, **values))


def test_interval_matrix_matches_hand_computed_cases():
    days = torch.tensor([[0, 3, 5, 5, 12], [1, 2, 4, 8, 16], [7, 7, 7, 7, 7]])
    valid = torch.tensor([[False, True, True, True, True], [True] * 5, [True] * 5])
    got = interval_matrix(days, valid, max_interval=3)
    # Row 0: smallest non-zero gap among 3, 5, 5, 12 is 2, so r = floor(|gap| / 2) clipped at 3;
    # the padded first slot pairs with nothing (0).
    expected_0 = [
        [0, 0, 0, 0, 0],
        [0, 0, 1, 1, 3],
        [0, 1, 0, 0, 3],
        [0, 1, 0, 0, 3],
        [0, 3, 3, 3, 0],
    ]
    # Row 1: smallest gap 1, so r = |gap| clipped at 3.
    expected_1 = [
        [0, 1, 3, 3, 3],
        [1, 0, 2, 3, 3],
        [3, 2, 0, 3, 3],
        [3, 3, 3, 0, 3],
        [3, 3, 3, 3, 0],
    ]
    assert got[0].tolist() == expected_0
    assert got[1].tolist() == expected_1
    assert got[2].eq(0).all()  # one day only: scale 1, every interval 0


def test_days_are_recovered_from_normalised_times():
    times = torch.tensor(TimeNormalizer(100, 7).normalize_days(np.array([100, 103, 107, 114])))
    assert days_from_times(times.float(), 7.0).tolist() == [0, 3, 7, 14]


def test_tisasrec_scores_depend_on_intervals_only():
    model = small("tisasrec").eval()
    batch = toy_batch()
    shifted = {**batch, "times": batch["times"] + 0.5}  # same intervals, later dates
    stretched = {**batch, "times": batch["times"] * torch.tensor([1.0, 1.0, 3.0, 1.0])}
    base = model.score(batch)
    assert torch.allclose(base, model.score(shifted), atol=1e-5)
    assert not torch.allclose(base[1], model.score(stretched)[1])


def test_meantime_relative_kernels_match_hand_computed_values():
    model = small("meantime", hidden=4, meantime_kernels="pos,sin,exp,log")
    days = torch.tensor([[0, 1, 3]])
    sin = model.relative_kernel("sin", days)[0]
    # D_20 = 3 - 0 = 3; sinusoid pairs at frequencies 10000^(-0/4), 10000^(-2/4).
    assert sin[2, 0].tolist() == pytest.approx(
        [math.sin(3), math.cos(3), math.sin(0.03), math.cos(0.03)], rel=1e-5
    )
    assert sin[0, 2].tolist() == pytest.approx(
        [math.sin(-3), math.cos(-3), math.sin(-0.03), math.cos(-0.03)], rel=1e-5
    )
    rates = [1.0, 0.1, 0.01, 0.001]  # 10000^(-k/4)
    exp = model.relative_kernel("exp", days)[0]
    log = model.relative_kernel("log", days)[0]
    assert exp[0, 1].tolist() == pytest.approx([math.exp(-r) for r in rates], rel=1e-5)
    assert log[2, 1].tolist() == pytest.approx([math.log1p(2 * r) for r in rates], rel=1e-5)
    assert exp[1, 1].tolist() == pytest.approx([1.0] * 4)  # no interval with itself


def test_meantime_absolute_kernels_index_positions_and_days():
    model = small("meantime", hidden=4, span_days=2.0, meantime_kernels="pos,day,con,sin")
    tokens = torch.tensor([[0, 5, 6, 7, 8]])
    days = torch.tensor([[0, 0, 1, 2, 9]])
    day = model.absolute_kernel("day", tokens, days)[0]
    # Three training days (0..2); day 9 lies beyond them and shares the last row.
    assert torch.equal(day, model.day.weight[[0, 0, 1, 2, 2]])
    pos = model.absolute_kernel("pos", tokens, days)[0]
    assert torch.equal(pos, model.position.weight)
    con = model.absolute_kernel("con", tokens, days)[0]
    assert torch.equal(con, model.constant.expand(5, 4))


def test_meantime_needs_one_head_per_kernel():
    with pytest.raises(ValueError, match="one head per kernel"):
        preset("meantime", n_items=5, hidden=16, heads=2)
    with pytest.raises(ValueError, match="meantime_kernels"):
        preset("meantime", n_items=5, hidden=16, heads=2, meantime_kernels="pos,week")


def test_bert4rec_is_bidirectional_and_tisasrec_causal():
    tokens = torch.tensor([[1, 2, 3, 4, 5]])
    changed = torch.tensor([[1, 2, 3, 4, 9]])
    masked = torch.zeros_like(tokens, dtype=torch.bool)
    times = torch.zeros(1, 5)
    bert = small("bert4rec").eval()
    first = bert.encode(tokens, masked, times)[0, 0]
    assert not torch.allclose(first, bert.encode(changed, masked, times)[0, 0])
    tisas = small("tisasrec").eval()
    batch = {"items": tokens[:, :4], "times": torch.zeros(1, 4)}
    later = {"items": torch.tensor([[1, 2, 3, 9]]), "times": torch.zeros(1, 4)}
    assert torch.equal(tisas.states(batch)[0, 0], tisas.states(later)[0, 0])


def test_cloze_loss_trains_the_target_slot_even_without_random_masks():
    model = small("bert4rec", mask_prob=0.0)
    loss, _ = model.loss(toy_batch())
    loss.backward()
    assert torch.isfinite(loss) and model.mask_token.grad.abs().sum() > 0


@pytest.mark.parametrize("name", BASELINES)
def test_scores_do_not_depend_on_the_rest_of_the_batch(name):
    model = small(name).eval()
    batch = toy_batch()
    together = model.score(batch)
    alone = model.score({k: v[1:2] for k, v in batch.items()})
    assert torch.allclose(together[1:2], alone, atol=1e-5)
    assert together[:, 0].eq(float("-inf")).all() and torch.isfinite(together[:, 1:]).all()


@pytest.mark.parametrize("name", BASELINES)
def test_checkpoint_round_trip_gives_identical_scores(tmp_path, name):
    model = small(name).eval()
    config = model.config
    vocab = [f"item-{i}" for i in range(12)]
    path = save_checkpoint(
        tmp_path / "ckpt", model, config, name, vocab, list(range(12)), TimeNormalizer(0, 20)
    )
    loaded = load_checkpoint(path)
    assert loaded.config == config
    assert torch.equal(model.score(toy_batch()), loaded.model.score(toy_batch()))


@pytest.fixture(scope="module")
def movielens_slice():
    """The 600 users with the smallest ids, each cut to their last 12 ratings, LOO."""
    inter = load_interactions(str(reference_data("ml-100k")))
    ids = inter.users.astype(int)
    keep = np.isin(ids, np.sort(np.unique(ids))[:600])
    inter = Interactions(inter.users[keep], inter.items[keep], inter.timestamps[keep])
    data = build_sequences(inter, k_core=5, truncate=12)
    split = split_loo(data, 10, "prefixes")
    normalizer = TimeNormalizer.from_day_range(*split.train_day_range)
    popularity = build_model(preset("popularity", n_items=data.n_items, history_length=10))
    popularity.fit_statistics(torch.as_tensor(split.train.target))
    baseline = evaluate(popularity, split.test, normalizer, torch.device("cpu"))
    return data, split, normalizer, baseline["HR@10"]


# Epochs and learning rate per model: the fewest that leave popularity clearly behind.
SCHEDULE = {"bert4rec": (8, 5e-3), "tisasrec": (6, 5e-3), "meantime": (5, 5e-3),
            "diffurec": (7, 5e-3)}


@pytest.mark.slow
@pytest.mark.parametrize("name", BASELINES)
def test_baseline_beats_popularity_on_a_movielens_slice(movielens_slice, name):
    data, split, normalizer, popularity_hr10 = movielens_slice
    seed_everything(0)
    config = preset(name, n_items=data.n_items, history_length=10, hidden=32, blocks=1,
                    span_days=float(normalizer.span_days))
    model = build_model(config)
    epochs, lr = SCHEDULE[name]
    cfg = TrainConfig(epochs=epochs, lr=lr, progress=False, patience=epochs)
    train(model, split.train, split.valid, normalizer, cfg)
    result = evaluate(model, split.test, normalizer, torch.device("cpu"))
    # At least 1.2 points (7 of the 600 test users) above popularity.
    assert result["HR@10"] >= popularity_hr10 + 1.2, (result, popularity_hr10)
