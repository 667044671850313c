import pytest
import torch

from pasrec.model.config import preset
from pasrec.model.encoder import CausalTransformer
from pasrec.model.losses import bpr_loss, reconstruction_error
from pasrec.model.registry import build_model


def toy_batch() -> dict[str, torch.Tensor]:
    return {
        "items": torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7], [0, 0, 8, 9]]),
        "times": torch.tensor([[0, 0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4], [0, 0, 0.5, 0.6]]),
        "target": torch.tensor([10, 11, 12]),
        "target_time": torch.tensor([0.35, 0.5, 0.7]),
    }


def pasrec(**kw):
    torch.manual_seed(0)
    return build_model(preset("pasrec-paper", n_items=12, hidden=16, history_length=4, **kw))


def test_ddim_without_guidance_equals_the_conditional_path():
    model = pasrec(guidance=0.0, ddim_steps=10).eval()
    batch = toy_batch()
    x0 = model.generate(batch)
    # Recompute the purely conditional DDIM by hand with the same seeded noise.
    cond, _ = model.condition(model.user_state(batch), batch["times"][:, -1], None)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((1, cond.shape[-1]), generator=generator).expand_as(cond)
    schedule = model.diffusion.ddim_schedule(10)
    abar = model.diffusion.alpha_bar
    for i, step in enumerate(schedule):
        pred = model.denoiser(x, torch.full((3,), step), cond)
        if i == len(schedule) - 1:
            break
        eps = (x - abar[step].sqrt() * pred) / (1 - abar[step]).sqrt()
        nxt = schedule[i + 1]
        x = abar[nxt].sqrt() * pred + (1 - abar[nxt]).sqrt() * eps
    assert torch.allclose(x0, pred, atol=1e-5)
    # With guidance the result differs: w is really applied.
    model.config.guidance = 4.0
    assert not torch.allclose(model.generate(batch), x0, atol=1e-4)


def test_one_pass_guidance_equals_the_two_pass_formula():
    """The denoiser is affine in its condition, so (1+w) f(x,c) - w f(x,Phi) is one pass."""
    model = pasrec().eval()
    torch.manual_seed(1)
    x, cond = torch.randn(5, 16), torch.randn(5, 16)
    steps = torch.tensor([0, 7, 7, 1999, 500])
    null = model.denoiser.null_like(cond)
    two_pass = 9.0 * model.denoiser(x, steps, cond) - 8.0 * model.denoiser(x, steps, null)
    assert torch.allclose(model.denoiser.guided(x, steps, cond, 8.0), two_pass, atol=1e-4)
    assert torch.equal(model.denoiser.guided(x, steps, cond, 0.0), model.denoiser(x, steps, cond))
    # Rows with the same step get the same step embedding as when embedded one by one.
    single = torch.cat([model.denoiser(x[i : i + 1], steps[i : i + 1], cond[i : i + 1])
                        for i in range(5)])  # fmt: skip
    assert torch.allclose(model.denoiser(x, steps, cond), single, atol=1e-5)


def test_a_row_does_not_depend_on_its_batch():
    model = pasrec().eval()
    batch = toy_batch()
    alone = model.score({k: v[1:2] for k, v in batch.items()})
    assert torch.allclose(model.score(batch)[1:2], alone, atol=1e-5)


def test_same_seed_same_top_k():
    model = pasrec().eval()
    a = model.score(toy_batch()).topk(5).indices
    b = model.score(toy_batch()).topk(5).indices
    assert torch.equal(a, b)


def test_bpr_term_falls_when_positive_reconstructs_better():
    neg = torch.tensor([0.5, 0.5])
    worse = bpr_loss(torch.tensor([0.6, 0.6]), neg, scale=5.0)
    better = bpr_loss(torch.tensor([0.2, 0.2]), neg, scale=5.0)
    assert better < worse
    assert (
        bpr_loss(torch.tensor([0.5]), torch.tensor([0.5]), 5.0).item()
        == torch.log(torch.tensor(2.0)).item()
    )


def test_reconstruction_errors():
    x = torch.tensor([[1.0, 0.0]])
    assert reconstruction_error(x, x, "cosine").item() == 0.0
    assert reconstruction_error(torch.tensor([[0.0, 2.0]]), x, "cosine").item() == 1.0
    assert reconstruction_error(torch.tensor([[3.0, 0.0]]), x, "l2").item() == 4.0


def test_eta_one_gives_the_toi_module_no_gradient():
    model = pasrec(eta=1.0)
    loss, _ = model.loss(toy_batch())
    loss.backward()
    grads = [p.grad for p in model.toi_module.parameters()]
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)
    # and with eta < 1 it does learn
    model = pasrec(eta=0.5)
    model.loss(toy_batch())[0].backward()
    assert any(
        g is not None and torch.count_nonzero(g) > 0
        for g in (p.grad for p in model.toi_module.parameters())
    )


def test_conditioning_on_a_given_time_changes_the_recommendation_input():
    model = pasrec().eval()
    batch = toy_batch()
    user = model.user_state(batch)
    predicted, _ = model.condition(user, batch["times"][:, -1], None)
    at = torch.tensor([float("nan"), 3.0, float("nan")])
    given, _ = model.condition(user, batch["times"][:, -1], at)
    assert torch.allclose(predicted[0], given[0]) and torch.allclose(predicted[2], given[2])
    assert not torch.allclose(predicted[1], given[1])


def test_ablations_are_configurations():
    base = build_model(preset("preferdiff", n_items=12, hidden=16, history_length=4))
    assert not base.has_toi and base.time_encoding.kind == "position"
    dream = preset("dreamrec", n_items=12, hidden=16)
    assert dream.lam == 1.0 and dream.recon_loss == "l2"
    te = build_model(preset("pasrec-te", n_items=12, hidden=16, history_length=4))
    assert te.time_encoding.uses_time and not te.has_toi


@pytest.mark.parametrize("blocks", [1, 2])
def test_last_slot_path_equals_the_full_encoder(blocks):
    config = preset("preferdiff", n_items=50, hidden=32, blocks=blocks)
    encoder = CausalTransformer(config).eval()
    torch.manual_seed(0)
    items = torch.randint(0, 50, (16, 10))
    items[:, -1] = torch.randint(1, 50, (16,))
    items[0] = 0  # an empty history: its state must stay zero on both paths
    inputs = torch.randn(16, 10, 32)
    with torch.no_grad():
        full = encoder(items, inputs)[:, -1]
        last = encoder.last(items, inputs)
    assert torch.allclose(full, last, atol=1e-5)
    assert last[0].abs().max() == 0
    assert last[1:].abs().max() > 0.1


def test_every_slot_training_rows_are_the_prefix_samples():
    """Each non-padded slot becomes one sample: the state of the history up to it (the same
    as encoding that prefix alone), its time, and the following item and time as target."""
    model = pasrec(diffusion_slots="every").eval()
    batch = toy_batch()
    with torch.no_grad():
        user, last_times, targets, target_times, last_user = model.training_rows(batch)
    assert targets.tolist() == [2, 3, 10, 5, 6, 7, 11, 9, 12]
    expected_target_times = [0.2, 0.3, 0.35, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert torch.allclose(target_times, torch.tensor(expected_target_times))
    assert torch.allclose(last_times, torch.tensor([0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    # Row 4 (from 0) is user 1 after items 4, 5: encode that prefix left-padded, on its own.
    prefix = {"items": torch.tensor([[0, 0, 4, 5]]), "times": torch.tensor([[0, 0, 0.1, 0.2]])}
    with torch.no_grad():
        alone = model.user_state(prefix)
        assert torch.allclose(user[4], alone[0], atol=1e-5)
        assert torch.allclose(last_user, model.user_state(batch), atol=1e-5)
    # The paper's PASRec trains one row per sample: the last slot.
    single = pasrec().eval()
    with torch.no_grad():
        rows = single.training_rows(batch)
    assert rows[2].tolist() == [10, 11, 12] and rows[0].shape == (3, 16)
    # Every-slot training learns: the loss over those rows falls under a few steps of AdamW.
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    first = model.loss(batch)[0]
    for _ in range(60):
        optimiser.zero_grad()
        loss = model.loss(batch)[0]
        loss.backward()
        optimiser.step()
    assert loss.item() < first.item()


def test_diffusion_slots_is_validated():
    with pytest.raises(ValueError, match="diffusion_slots"):
        preset("pasrec", diffusion_slots="all")


def test_the_item_table_learns_at_its_own_rate():
    from pasrec.training.trainer import make_optimizer

    model = pasrec()
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.0, embedding_lr_scale=10.0)
    table, rest = optimizer.param_groups[1], optimizer.param_groups[0]
    assert table["lr"] == pytest.approx(1e-2) and rest["lr"] == pytest.approx(1e-3)
    assert len(table["params"]) == 1 and table["params"][0] is model.items.weight
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    # One step moves each table row about ten times as far as with the common rate.
    before = model.items.weight.detach().clone()
    model.loss(toy_batch())[0].backward()
    optimizer.step()
    moved = (model.items.weight.detach() - before).abs().max().item()
    assert moved == pytest.approx(1e-2, rel=0.05)
