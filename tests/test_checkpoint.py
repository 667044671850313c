import json

import pytest
import torch

from pasrec.model.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from pasrec.model.config import preset
from pasrec.model.predictor import Predictor
from pasrec.model.registry import build_model
from pasrec.model.time_norm import TimeNormalizer

VOCAB = [f"item-{i}" for i in range(12)]


def toy_batch():
    return {
        "items": torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]]),
        "times": torch.tensor([[0, 0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4]]),
    }


def saved(tmp_path, name="pasrec", fitted=None, **kw):
    torch.manual_seed(1)
    config = preset(name, n_items=12, hidden=16, history_length=4, seed=5, **kw)
    model = build_model(config).eval()
    model.load_fitted_state(fitted or {})
    path = save_checkpoint(
        tmp_path / "ckpt", model, config, name, VOCAB, list(range(12)), TimeNormalizer(15000, 400)
    )
    return model, path


@pytest.mark.parametrize(
    "name", ["pasrec", "pasrec-paper", "preferdiff", "sasrec", "gru4rec", "popularity"]
)
def test_round_trip_gives_identical_scores(tmp_path, name):
    model, path = saved(tmp_path, name)
    loaded = load_checkpoint(path)
    assert torch.equal(model.score(toy_batch()), loaded.model.score(toy_batch()))
    assert loaded.item_vocab == VOCAB and loaded.time == TimeNormalizer(15000, 400)
    assert loaded.version.startswith(name + "-")


def test_rff_frequencies_survive_save_and_load(tmp_path):
    model, path = saved(tmp_path, time_encoding="rff")
    loaded = load_checkpoint(path).model
    assert torch.equal(model.time_encoding.rff_freqs, loaded.time_encoding.rff_freqs)


def test_tampered_weights_are_refused(tmp_path):
    _, path = saved(tmp_path)
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="modified"):
        load_checkpoint(path)


def test_newer_format_version_is_refused(tmp_path):
    _, path = saved(tmp_path)
    meta = json.loads((path / "config.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)


def _as_older_format(path, version, edit):
    """The checkpoint rewritten as format ``version`` (< 3: no manifest)."""
    (path / "manifest.json").unlink()
    meta = json.loads((path / "config.json").read_text())
    meta["format_version"] = version
    del meta["fitted"]
    edit(meta)
    (path / "config.json").write_text(json.dumps(meta))


def test_recalibration_is_saved_as_fitted_state_and_older_checkpoints_still_load(tmp_path):
    levels = [0.0, 0.3, 1.0]
    model, path = saved(tmp_path, toi_head="tpp", fitted={"tpp_calibration": levels})
    loaded = load_checkpoint(path)
    assert loaded.model.fitted_state() == {"tpp_calibration": levels}
    assert loaded.model.gap_distribution(toy_batch()).calibration == tuple(levels)
    assert "tpp_calibration" not in json.loads((path / "config.json").read_text())["model"]
    # Formats 2 and 3 kept the calibration in the model config.
    _as_older_format(path, 2, lambda meta: meta["model"].update(tpp_calibration=levels))
    assert load_checkpoint(path).model.fitted_state() == {"tpp_calibration": levels}
    # A version-1 checkpoint (written before recalibration existed) has no such key, and
    # no manifest (format 3).
    _, path = saved(tmp_path / "v1", toi_head="tpp")
    _as_older_format(path, 1, lambda meta: None)
    old = load_checkpoint(path)
    assert old.model.fitted_state() == {}
    assert old.model.gap_distribution(toy_batch()).calibration == ()
    assert torch.equal(old.model.score(toy_batch()), model.score(toy_batch()))


@pytest.mark.parametrize(
    ("fitted", "message"),
    [
        ({"tpp_calibration": [0.0, 0.6, 0.5, 1.0]}, "rise strictly"),
        ({"tpp_calibration": "0,1"}, "rise strictly|fitted"),
        ({"ema_decay": 0.9}, "unknown fitted state"),
    ],
)
def test_invalid_fitted_state_is_refused_with_its_file(tmp_path, fitted, message):
    _, path = saved(tmp_path, toi_head="tpp")
    _as_older_format(path, 2, lambda meta: meta.update(fitted=fitted))
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(path)
    assert "config.json" in str(caught.value)


def test_calibration_on_a_model_without_a_tpp_head_is_refused():
    model = build_model(preset("pasrec", n_items=12, hidden=16, history_length=4))
    with pytest.raises(ValueError, match="no tpp head"):
        model.load_fitted_state({"tpp_calibration": [0.0, 1.0]})


def test_missing_or_broken_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")
    _, path = saved(tmp_path)
    (path / "vocab.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="vocab.json"):
        load_checkpoint(path)


def rewrite_json(path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("vocab.json", lambda v: v["items"].__setitem__(0, "renamed")),
        ("config.json", lambda c: c["extra"].__setitem__("note", "edited")),
        ("time.json", lambda t: t.__setitem__("origin_day", t["origin_day"] + 1)),
    ],
)
def test_every_file_is_digest_checked(tmp_path, name, edit):
    _, path = saved(tmp_path)
    rewrite_json(path / name, edit)
    with pytest.raises(CheckpointError, match=f"{name} does not match .* modified"):
        load_checkpoint(path)


def test_the_version_covers_every_file(tmp_path):
    """Same weights, another vocabulary or config: another version (pushes and metrics tell
    the models apart), for new checkpoints and for old ones without a manifest alike."""
    model, path = saved(tmp_path)
    config = preset("pasrec", n_items=12, hidden=16, history_length=4, seed=5)
    time = TimeNormalizer(15000, 400)
    renamed = ["other-" + item for item in VOCAB]
    other = save_checkpoint(tmp_path / "b", model, config, "pasrec", renamed, list(range(12)), time)
    noted = save_checkpoint(
        tmp_path / "c", model, config, "pasrec", VOCAB, list(range(12)), time, {"note": 1}
    )
    versions = {load_checkpoint(p).version for p in (path, other, noted)}
    assert len(versions) == 3
    before = load_checkpoint(path).version
    (path / "manifest.json").unlink()
    rewrite_json(path / "config.json", lambda c: c.__setitem__("format_version", 2))
    legacy = load_checkpoint(path).version
    rewrite_json(path / "vocab.json", lambda v: v["items"].__setitem__(0, "renamed"))
    assert len({before, legacy, load_checkpoint(path).version}) == 3


def test_checkpoint_holds_no_pickle(tmp_path):
    _, path = saved(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "manifest.json",
        "time.json",
        "vocab.json",
        "weights.safetensors",
    ]
    assert not (path / "weights.safetensors").read_bytes().startswith(b"\x80")


def test_predictor_speaks_raw_ids_and_unix_seconds(tmp_path):
    _, path = saved(tmp_path)
    predictor = Predictor.load(path, device="cpu")
    day = 86400
    history = [("item-0", 15100 * day), ("item-3", 15110 * day), ("unknown", 15111 * day)]
    recs = predictor.recommend([history], k=5, exclude=[{"item-0", "item-3"}])[0]
    assert len(recs) == 5 and not {"item-0", "item-3"} & {i for i, _ in recs}
    assert all(i in VOCAB for i, _ in recs)
    at = predictor.recommend([history], k=5, at=[15400 * day])[0]
    # Conditioning on another time than the predicted ToI changes what is generated.
    assert [s for _, s in at] != [s for _, s in predictor.recommend([history], k=5)[0]]
    (next_time,) = predictor.predict_next_time([history])
    assert next_time is not None
    assert 15110 * day <= next_time.time <= (15110 + 365) * day
    assert predictor.popular(3) == [("item-11", 11.0), ("item-10", 10.0), ("item-9", 9.0)]
    assert predictor.predict_next_time([[("unknown", 0.0)]]) == [None]


def test_predictor_gives_ordered_quantiles_with_the_tpp_head(tmp_path):
    _, path = saved(tmp_path, toi_head="tpp", span_days=400.0)
    predictor = Predictor.load(path, device="cpu")
    day = 86400
    histories = [[("item-1", 15100 * day), ("item-2", 15104 * day + 3600)],
                 [("item-5", 15200 * day)]]
    for history, result in zip(histories, predictor.predict_next_time(histories), strict=True):
        values = [result.quantiles[q] for q in sorted(result.quantiles)]
        assert values == sorted(values) and values[0] >= (history[-1][1] // day) * day
        probabilities = [result.p_within[h] for h in sorted(result.p_within)]
        assert probabilities == sorted(probabilities) and 0 <= probabilities[0] <= 1
    # Batched and single answers agree (the scheduler batches users).
    alone = predictor.predict_next_time(histories[1:])[0]
    assert alone.quantiles == pytest.approx(predictor.predict_next_time(histories)[1].quantiles)


def test_a_gaps_only_head_forecasts_from_the_last_event_of_any_item(tmp_path):
    """Visits to items the checkpoint never saw still say when the user was last here: a
    gaps-only head reads them, so its forecast moves with such a visit and starts after it."""
    _, path = saved(tmp_path, toi_head="tpp", tpp_inputs="gaps", span_days=400.0)
    predictor = Predictor.load(path, device="cpu")
    day = 86400
    known = [("item-1", 15100 * day), ("item-2", 15103 * day), ("item-3", 15110 * day)]
    later_visit = [*known, ("new-item", 15140 * day)]
    before, after = predictor.predict_next_time([known, later_visit])
    assert before.window_start >= 15111 * day
    assert after.window_start >= 15141 * day  # counted from the unknown item's visit
    assert after.quantiles[0.5] >= 15140 * day
    assert before.p_timely != pytest.approx(after.p_timely)  # the 30-day gap is read
    assert 0.0 <= after.p_timely <= 1.0
