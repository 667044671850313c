"""The full-item cross-entropy on the denoised estimate (``ce_weight``) and on the condition
(``state_ce_weight``), the GRU encoder, and their knobs."""

import math

import pytest
import torch
from torch import nn

from pasrec.model.config import preset
from pasrec.model.recommenders import next_item_loss
from pasrec.model.registry import build_model


def test_cross_entropy_by_hand_on_a_tiny_table():
    table = nn.Embedding(4, 2, padding_idx=0)
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    states = torch.tensor([[2.0, 0.0]])
    # Logits over items 1..3 (the padding row never competes): 2, 0, 2 at temperature 1.
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(2)))
    got = next_item_loss(states, torch.tensor([1]), table, "ce")
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # Temperature 2 halves the logits: 1, 0, 1.
    expected_t2 = -math.log(math.exp(1) / (2 * math.exp(1) + 1))
    got_t2 = next_item_loss(states, torch.tensor([1]), table, "ce", temperature=2.0)
    assert got_t2.item() == pytest.approx(expected_t2, rel=1e-6)


def test_label_smoothing_by_hand_on_a_tiny_table():
    table = nn.Embedding(4, 2, padding_idx=0)
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    states = torch.tensor([[1.0, 2.0]])
    # Logits over items 1..3: 1, 2, 3; the padding row takes no share of the smoothed label.
    log_z = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    nll = [log_z - logit for logit in (1.0, 2.0, 3.0)]
    expected = 0.7 * nll[2] + 0.3 * sum(nll) / 3
    got = next_item_loss(states, torch.tensor([3]), table, "ce", smoothing=0.3)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    plain = next_item_loss(states, torch.tensor([3]), table, "ce")
    assert plain.item() == pytest.approx(nll[2], rel=1e-6)


def test_a_smoothed_classifier_stops_short_of_certainty():
    """Trained to convergence on a toy where the next item is certain, the target's
    probability approaches 1 - s + s / n under smoothing s, and 1 without it."""
    batch = toy_rows(0, count=64)
    top = {}
    for smoothing in (0.0, 0.3):
        torch.manual_seed(0)
        model = build_model(preset("gru4rec", n_items=12, hidden=32, history_length=4,
                                   dropout=0.0, label_smoothing=smoothing))  # fmt: skip
        optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
        for _ in range(300):
            optimizer.zero_grad()
            model.loss(batch)[0].backward()
            optimizer.step()
        probs = torch.softmax(model.eval().score(batch), dim=-1)
        top[smoothing] = probs.gather(1, batch["target"].unsqueeze(1)).mean().item()
    assert top[0.0] > 0.95
    assert top[0.3] == pytest.approx(1 - 0.3 + 0.3 / 12, abs=0.05)


@pytest.mark.parametrize("model_name", ["sasrec", "bert4rec", "tisasrec", "meantime", "diffurec"])
def test_every_cross_entropy_baseline_takes_the_smoothing(model_name):
    batch = toy_rows(0, count=8)
    losses = {}
    for smoothing in (0.0, 0.5):
        torch.manual_seed(0)
        model = build_model(preset(model_name, n_items=12, hidden=16, history_length=4,
                                   heads=2 if model_name != "meantime" else 4,
                                   meantime_kernels="pos,day,sin,log",
                                   label_smoothing=smoothing))  # fmt: skip
        torch.manual_seed(7)  # the same masks, dropout and noise for both
        losses[smoothing] = model.loss(batch)[0].item()
    assert losses[0.5] != pytest.approx(losses[0.0], rel=1e-4)


def test_label_smoothing_reaches_both_cross_entropies_of_the_diffusion_model():
    batch = toy_rows(0, count=8)
    parts = {}
    for smoothing in (0.0, 0.2):
        torch.manual_seed(0)
        model = build_model(preset("pasrec", n_items=12, hidden=16, history_length=4,
                                   label_smoothing=smoothing)).eval()  # fmt: skip
        torch.manual_seed(7)  # the same diffusion steps and noise for both
        parts[smoothing] = model.loss(batch)[1]
    user, _, targets, _, _ = model.training_rows(batch)
    smoothed = next_item_loss(user, targets, model.items, "ce", smoothing=0.2).item()
    assert parts[0.2]["state_ce"] == pytest.approx(smoothed, rel=1e-5)
    assert parts[0.0]["state_ce"] != pytest.approx(smoothed, rel=1e-5)
    # The estimate's cross-entropy, on the same noisy rows, is smoothed too.
    assert parts[0.2]["ce"] != pytest.approx(parts[0.0]["ce"], rel=1e-5)


def toy_rows(seed: int, count: int = 64, n_items: int = 12, length: int = 4):
    """Histories of consecutive items a, a+1, ...; the target is the next one."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randint(1, n_items - length, (count, 1), generator=generator)
    items = start + torch.arange(length)
    times = torch.linspace(0, 0.3, length).expand(count, length).clone()
    return {"items": items, "times": times, "target": items[:, -1] + 1,
            "target_time": torch.full((count,), 0.4)}  # fmt: skip


def diffusion(**kw):
    torch.manual_seed(0)
    return build_model(preset("pasrec-paper", n_items=12, hidden=16, history_length=4, **kw))


@pytest.mark.parametrize(("field", "part"), [("ce_weight", "ce"), ("state_ce_weight", "state_ce")])
def test_the_term_is_added_with_its_weight_inside_the_ioi_loss(field, part):
    batch = toy_rows(0, count=8)
    losses = {}
    for weight in (0.0, 1.0, 3.0):
        model = diffusion(**{field: weight})
        torch.manual_seed(7)  # the same steps, noise and condition dropout for each weight
        losses[weight] = model.loss(batch)
    ce = losses[1.0][1][part]
    assert part not in losses[0.0][1]
    assert losses[3.0][1][part] == pytest.approx(ce)
    eta = preset("pasrec-paper").eta
    assert (losses[1.0][0] - losses[0.0][0]).item() == pytest.approx(eta * ce, rel=1e-4)
    assert (losses[3.0][0] - losses[0.0][0]).item() == pytest.approx(3 * eta * ce, rel=1e-4)


def test_the_state_term_is_the_cross_entropy_of_the_condition_itself():
    batch = toy_rows(0, count=8)
    model = diffusion(state_ce_weight=1.0, ce_temperature=0.5).eval()  # no dropout
    cond, _ = model.condition(model.user_state(batch), batch["times"][:, -1], None)
    logits = cond @ model.items.weight.T / 0.5
    logits[:, 0] = float("-inf")
    expected = nn.functional.cross_entropy(logits, batch["target"])
    assert model.loss(batch)[1]["state_ce"] == pytest.approx(expected.item(), rel=1e-5)


def test_the_gru_encoder_serves_the_diffusion_model():
    batch = toy_rows(0, count=3)
    model = diffusion(encoder="gru", denoiser="mlp").eval()
    assert isinstance(model.encoder.gru, nn.GRU)
    inputs = model.sequence_inputs(batch)
    every = model.encoder(batch["items"], inputs)
    assert torch.equal(model.encoder.last(batch["items"], inputs), every[:, -1])
    # The state depends on the order of the history, not only on its contents.
    reversed_batch = {**batch, "items": batch["items"].flip(1)}
    assert not torch.allclose(model.user_state(batch), model.user_state(reversed_batch))
    assert model.score(batch).shape == (3, 13)
    with pytest.raises(ValueError, match="encoder"):
        preset("pasrec", encoder="lstm")


def test_item_inputs_leave_the_times_out_of_the_encoder():
    batch = toy_rows(0, count=3)
    shifted = {**batch, "times": batch["times"] + 0.2}
    with_time = diffusion(encoder="gru").eval()
    assert not torch.allclose(with_time.user_state(batch), with_time.user_state(shifted))
    item_only = diffusion(encoder="gru", encoder_inputs="item").eval()
    assert torch.equal(item_only.user_state(batch), item_only.user_state(shifted))
    # Time still reaches the condition through the ToI module.
    last = batch["times"][:, -1]
    cond, _ = item_only.condition(item_only.user_state(batch), last, None)
    cond_later, _ = item_only.condition(item_only.user_state(batch), last + 0.2, None)
    assert not torch.allclose(cond, cond_later)


@pytest.mark.parametrize("losses", ["all", "state", "user"])
def test_state_losses_keep_the_denoisers_gradient_off_the_encoder(losses):
    batch = toy_rows(0, count=8)
    # No loss on the state itself and no ToI loss: only the denoiser's losses remain.
    model = diffusion(encoder_losses=losses, state_ce_weight=0.0, ce_weight=1.0, eta=1.0)
    loss, _ = model.loss(batch)
    loss.backward()
    encoder_grad = sum(p.grad.abs().sum().item() for p in model.encoder.parameters()
                       if p.grad is not None)  # fmt: skip
    denoiser_grad = sum(p.grad.abs().sum().item() for p in model.denoiser.parameters())
    assert denoiser_grad > 0
    assert (encoder_grad == 0) == (losses != "all")
    table_grad = model.items.weight.grad
    table_moved = table_grad is not None and bool(table_grad.abs().sum() > 0)
    assert table_moved == (losses != "user")


def test_user_losses_put_the_cross_entropy_on_the_encoders_own_state():
    batch = {**toy_rows(0, count=8), "items": toy_rows(0, count=8)["items"][:, -1:]}
    batch["times"] = batch["times"][:, -1:]  # one slot: every slot trained is the last one
    model = diffusion(encoder_losses="user", state_ce_weight=1.0, diffusion_slots="every").eval()
    logits = model.user_state(batch) @ model.items.weight.T
    logits[:, 0] = float("-inf")
    expected = nn.functional.cross_entropy(logits, batch["target"])
    assert model.loss(batch)[1]["state_ce"] == pytest.approx(expected.item(), rel=1e-5)


def test_the_term_falls_on_a_learnable_toy_problem_and_ddim_ranks_the_target_first():
    model = diffusion(ce_weight=1.0, item_init_std=0.25, guidance=0.0, ddim_steps=10)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    first = model.loss(toy_rows(0))[1]["ce"]
    for step in range(150):
        optimiser.zero_grad()
        loss, parts = model.loss(toy_rows(step))
        loss.backward()
        optimiser.step()
    assert parts["ce"] < 0.3 * first
    test = toy_rows(10_000)
    top = model.eval().score(test).argmax(dim=1)
    assert (top == test["target"]).float().mean() > 0.9


def test_item_table_initialisation_is_a_setting():
    assert diffusion().items.weight[1:].std().item() == pytest.approx(1.0, rel=0.1)
    assert diffusion(item_init_std=0.05).items.weight[1:].std().item() == pytest.approx(
        0.05, rel=0.1
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("ce_weight", -1.0), ("state_ce_weight", -0.5), ("ce_temperature", 0.0),
     ("item_init_std", -0.1), ("ce_step_floor", 1.0), ("ce_step_floor", -0.1),
     ("encoder_inputs", "time"), ("encoder_losses", "none"), ("label_smoothing", 1.0),
     ("label_smoothing", -0.1), ("denoiser_dropout", 1.0), ("denoiser_dropout", -0.1)],  # fmt: skip
)
def test_bad_objective_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        preset("pasrec", **{field: value})


def test_the_mlp_denoiser_applies_guidance_as_two_passes():
    model = diffusion(denoiser="mlp").eval()
    torch.manual_seed(1)
    x, cond = torch.randn(5, 16), torch.randn(5, 16)
    steps = torch.tensor([0, 7, 7, 1999, 500])
    null = model.denoiser.null_like(cond)
    two_pass = 5.0 * model.denoiser(x, steps, cond) - 4.0 * model.denoiser(x, steps, null)
    assert torch.allclose(model.denoiser.guided(x, steps, cond, 4.0), two_pass, atol=1e-5)
    # Not affine: the one-pass shortcut of the linear denoiser would give another answer.
    shortcut = model.denoiser(x, steps, 5.0 * cond - 4.0 * null)
    assert not torch.allclose(shortcut, two_pass, atol=1e-3)
    with pytest.raises(ValueError, match="denoiser"):
        preset("pasrec", denoiser="unet")
    # It corrects the condition: with its last layer at zero the estimate is the condition.
    last = model.denoiser.out[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    assert torch.equal(model.denoiser(x, steps, cond), cond)


def test_denoiser_dropout_acts_on_the_correction_while_training_only():
    plain = diffusion(denoiser="mlp")
    dropped = diffusion(denoiser="mlp", denoiser_dropout=0.5)
    dropped.load_state_dict(plain.state_dict())
    torch.manual_seed(1)
    x, cond = torch.randn(6, 16), torch.randn(6, 16)
    steps = torch.tensor([1000, 1200, 1500, 1999, 1000, 1700])
    plain.eval()
    dropped.eval()
    # At inference it is the same denoiser: DDIM samples do not depend on the setting.
    assert torch.equal(dropped.denoiser(x, steps, cond), plain.denoiser(x, steps, cond))
    dropped.train()
    torch.manual_seed(2)
    first = dropped.denoiser(x, steps, cond)
    second = dropped.denoiser(x, steps, cond)
    assert not torch.allclose(first, second)
    # Only the MLP's input is dropped: with its last layer at zero the condition comes back
    # whole, however many of its features the MLP did not see.
    last = dropped.denoiser.out[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    assert torch.equal(dropped.denoiser(x, steps, cond), cond)


def test_real_time_encodings_sit_at_the_item_tables_scale():
    batch = toy_rows(0, count=2)
    paper = diffusion()
    small = diffusion(item_init_std=0.05)
    # Same encoding, scaled to the table: RFF entries (cos, sin) of order 1 become order 0.05.
    assert torch.allclose(small.time_encoding(batch["times"]),
                          0.05 * paper.time_encoding(batch["times"]), atol=1e-7)  # fmt: skip
    assert paper.time_encoding(batch["times"]).abs().max() == pytest.approx(1.0, abs=0.05)


def test_ddim_can_stop_at_a_share_of_t_and_return_its_estimate_there():
    model = diffusion(diffusion_steps=100).eval()
    assert model.diffusion.ddim_schedule(5) == [99, 74, 50, 25, 0]
    assert model.diffusion.ddim_schedule(5, floor=0.5) == [99, 87, 74, 62, 50]
    seen: list[int] = []

    def predict_x0(x, steps):
        seen.append(int(steps[0]))
        return torch.full_like(x, float(steps[0]))  # the estimate names its step

    like = torch.zeros(2, 16)
    x0 = model.diffusion.ddim_sample(predict_x0, like, 3, floor=0.5)
    assert seen == [99, 74, 50] and torch.all(x0 == 50.0)
    # The model's sampler follows its config, so evaluate can re-score with another floor.
    batch = toy_rows(0, count=2)
    model.config.ddim_steps = 4
    full = model.generate(batch)
    model.config.ddim_floor = 0.5
    assert not torch.allclose(model.generate(batch), full)
    with pytest.raises(ValueError, match="ddim_floor"):
        preset("pasrec", ddim_floor=1.0)


def test_preferdiffs_loss_is_weighed_and_can_be_left_out():
    """ioi_weight scales PreferDiff's loss inside the item loss; at 0 the denoiser learns from
    the cross-entropy alone (no negative pass), and without either term it is refused."""
    batch = toy_rows(0, count=8)
    losses = {}
    for weight in (0.0, 1.0, 2.0):
        model = diffusion(ce_weight=1.0, ioi_weight=weight)
        torch.manual_seed(7)
        losses[weight] = model.loss(batch)
    ioi = losses[1.0][1]["ioi"]
    assert "ioi" not in losses[0.0][1] and losses[2.0][1]["ioi"] == pytest.approx(ioi)
    assert losses[0.0][1]["ce"] == pytest.approx(losses[1.0][1]["ce"])
    eta = preset("pasrec-paper").eta
    assert (losses[2.0][0] - losses[0.0][0]).item() == pytest.approx(2 * eta * ioi, rel=1e-4)
    with pytest.raises(ValueError, match="ioi_weight 0 needs ce_weight"):
        preset("pasrec-paper", ioi_weight=0.0, ce_weight=0.0)
    with pytest.raises(ValueError, match="ioi_weight must be >= 0"):
        preset("pasrec", ioi_weight=-1.0)

