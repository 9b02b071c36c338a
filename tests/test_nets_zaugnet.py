"""Tests of the ZAugNet networks (IFNet generator, WGAN-GP critic) and losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zaug.losses import charbonnier, gradient_penalty, laplacian_pyramid_loss
from zaug.nets import Critic, IFBlock, IFNet, critic_preset, distill_loss, ifnet_preset, warp

torch.set_num_threads(1)


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def fast_net() -> IFNet:
    torch.manual_seed(0)
    return IFNet(**ifnet_preset("fast")).eval()


# ----------------------------------------------------------------- warping
def test_warp_zero_flow_is_identity():
    img = torch.rand(2, 3, 13, 17)
    out = warp(img, torch.zeros(2, 2, 13, 17))
    assert torch.allclose(out, img, atol=1e-6)


@pytest.mark.parametrize("dx,dy", [(2, 0), (0, 3), (-1, 2)])
def test_warp_integer_flow_shifts(dx, dy):
    img = torch.rand(1, 1, 20, 24)
    flow = torch.empty(1, 2, 20, 24)
    flow[:, 0], flow[:, 1] = dx, dy
    out = warp(img, flow)
    # out[y, x] = img[y + dy, x + dx] wherever that stays inside the image.
    ys = slice(max(0, -dy), 20 - max(0, dy))
    xs = slice(max(0, -dx), 24 - max(0, dx))
    src = img[..., ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx]
    assert torch.allclose(out[..., ys, xs], src, atol=1e-5)
    # Border padding: sampling past the edge repeats the edge pixel.
    if dx > 0:
        assert torch.allclose(out[..., ys, -1], img[..., ys.start + dy : ys.stop + dy, -1], atol=1e-5)


def test_ifblock_flow_is_in_full_resolution_pixels():
    """A constant head output v (in its own grid's pixels) becomes v*2*scale."""
    block = IFBlock(2, 8)
    bias = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.7])
    with torch.no_grad():
        block.head.weight.zero_()
        block.head.bias.copy_(bias)
    for scale in (4, 2, 1):
        flow, mask = block(torch.rand(2, 2, 64, 96), None, scale)
        assert flow.shape == (2, 4, 64, 96) and mask.shape == (2, 1, 64, 96)
        want = (bias[:4] * 2 * scale).view(1, 4, 1, 1).expand_as(flow)
        assert torch.allclose(flow, want, atol=1e-5)
        assert torch.allclose(mask, torch.full_like(mask, 0.7), atol=1e-6)


# ------------------------------------------------------------------ IFNet
@pytest.mark.parametrize("shape", [(1, 37, 53), (3, 64, 64), (2, 40, 96)])
def test_ifnet_shapes_and_range(fast_net, shape):
    b, h, w = shape
    torch.manual_seed(1)
    i0, i1 = torch.rand(b, 1, h, w), torch.rand(b, 1, h, w)
    with torch.no_grad():
        out = fast_net(i0, i1)
    assert out.pred.shape == (b, 1, h, w)
    assert 0.0 <= out.pred.min() and out.pred.max() <= 1.0
    assert len(out.flows) == 3 and len(out.merged) == 3
    assert all(f.shape == (b, 4, h, w) for f in out.flows)
    assert all(m.shape == (b, 1, h, w) for m in out.merged)
    assert out.teacher_pred is None and out.teacher_flow is None
    assert out["pred"] is out.pred


def test_ifnet_unrefined_pred_is_last_blend():
    torch.manual_seed(0)
    net = IFNet(widths=(16, 16, 16), teacher_width=16, refine=False).eval()
    i0, i1 = torch.rand(2, 1, 32, 48), torch.rand(2, 1, 32, 48)
    with torch.no_grad():
        out = net(i0, i1)
    assert torch.equal(out.pred, out.merged[-1])
    # The blend is a convex combination of warped inputs (border padding).
    lo = torch.minimum(i0.amin((1, 2, 3)), i1.amin((1, 2, 3))).view(-1, 1, 1, 1)
    hi = torch.maximum(i0.amax((1, 2, 3)), i1.amax((1, 2, 3))).view(-1, 1, 1, 1)
    assert torch.all(out.pred >= lo - 1e-6) and torch.all(out.pred <= hi + 1e-6)


def test_distill_loss_zero_without_gt_finite_with_gt(fast_net):
    torch.manual_seed(2)
    i0, i1, gt = torch.rand(3, 2, 1, 37, 53).unbind(0)
    out = fast_net(i0, i1)
    assert out.distill_loss.ndim == 0 and out.distill_loss.item() == 0.0
    out = fast_net(i0, i1, gt=gt)
    assert out.teacher_pred.shape == (2, 1, 37, 53)
    assert out.teacher_flow.shape == (2, 4, 37, 53)
    assert torch.isfinite(out.distill_loss) and out.distill_loss.item() >= 0.0
    # Gradients reach the teacher only through its own prediction.
    fast_net.zero_grad()
    (laplacian_pyramid_loss(out.teacher_pred, gt) + out.distill_loss).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in fast_net.teacher.parameters())
    fast_net.zero_grad()


def test_t_argument():
    torch.manual_seed(0)
    plain = IFNet(widths=(16, 16, 16), teacher_width=16, context_ch=4).eval()
    i0, i1 = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        ref = plain(i0, i1).pred
        assert torch.equal(plain(i0, i1, t=0.5).pred, ref)
        assert torch.equal(plain(i0, i1, t=torch.full((2,), 0.5)).pred, ref)
    with pytest.raises(ValueError):
        plain(i0, i1, t=0.3)
    with pytest.raises(ValueError):
        plain(i0, i1, t=torch.tensor([0.5, 0.25]))

    pos = IFNet(widths=(16, 16, 16), teacher_width=16, context_ch=4, position_input=True).eval()
    with torch.no_grad():
        a = pos(i0, i1, t=0.2).pred
        b = pos(i0, i1, t=torch.tensor([0.2, 0.2])).pred
        c = pos(i0, i1, t=torch.full((2, 1, 1, 1), 0.2)).pred
        d = pos(i0, i1, t=0.8).pred
        assert torch.allclose(a, b) and torch.allclose(a, c)
        assert not torch.allclose(a, d)
        assert torch.equal(pos(i0, i1).pred, pos(i0, i1, t=0.5).pred)
    assert pos.blocks[0].stem[0][0].in_channels == plain.blocks[0].stem[0][0].in_channels + 1


def test_paper_parameter_counts():
    gen = IFNet(**ifnet_preset("paper"))
    total, infer = _n_params(gen), gen.inference_parameters()
    assert abs(total - 10.7e6) / 10.7e6 < 0.02
    assert abs(infer - 10.06e6) / 10.06e6 < 0.02
    assert infer == total - _n_params(gen.teacher)
    critic = Critic(**critic_preset("paper"))
    assert abs(_n_params(critic) - 11.2e6) / 11.2e6 < 0.02
    fast = IFNet(**ifnet_preset("fast"))
    assert _n_params(fast) < total / 2  # the CPU preset is much smaller
    assert abs(fast.inference_parameters() - 3.835e6) / 3.835e6 < 0.01


def _shifted_triplet(b: int, size: int, shift: int, seed: int):
    """I0, I1 = windows shifted by -/+shift of a smooth random image; gt = middle."""
    g = torch.Generator().manual_seed(seed)
    pad = 2 * shift + 8
    big = torch.rand(b, 1, size + 2 * pad, size + 2 * pad, generator=g)
    k = torch.ones(1, 1, 5, 5) / 25
    big = F.conv2d(F.conv2d(big, k), k)
    lo, hi = big.amin((2, 3), keepdim=True), big.amax((2, 3), keepdim=True)
    big = (big - lo) / (hi - lo)

    def win(dx):
        return big[..., pad : pad + size, pad + dx : pad + dx + size]

    return win(-shift), win(shift), win(0)


def test_fast_ifnet_learns_a_shift():
    torch.manual_seed(0)
    net = IFNet(**ifnet_preset("fast"))
    i0, i1, gt = _shifted_triplet(4, 32, 2, seed=0)
    with torch.no_grad():
        before = laplacian_pyramid_loss(net(i0, i1).pred, gt).item()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(30):
        out = net(i0, i1, gt=gt)
        loss = (
            laplacian_pyramid_loss(out.pred, gt)
            + laplacian_pyramid_loss(out.teacher_pred, gt)
            + 0.01 * out.distill_loss
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = laplacian_pyramid_loss(net(i0, i1).pred, gt).item()
    assert math.isfinite(after)
    assert after < 0.5 * before


# ----------------------------------------------------------------- critic
@pytest.mark.parametrize("shape", [(2, 64, 64), (3, 37, 53), (1, 100, 130), (2, 8, 8)])
def test_critic_shapes(shape):
    torch.manual_seed(0)
    critic = Critic(**critic_preset("fast"))
    b, h, w = shape
    out = critic(torch.rand(b, 1, h, w))
    assert out.shape == (b,) and torch.all(torch.isfinite(out))


# ----------------------------------------------------------------- losses
@pytest.mark.parametrize("hw", [(64, 64), (37, 53), (5, 3)])
def test_laplacian_loss_offsets(hw):
    torch.manual_seed(0)
    x = torch.rand(2, 1, *hw)
    assert laplacian_pyramid_loss(x, x).item() == 0.0
    with_res = laplacian_pyramid_loss(x + 0.1, x).item()
    assert with_res == pytest.approx(0.1, rel=1e-3)
    assert laplacian_pyramid_loss(x + 0.1, x, include_residual=False).item() < 1e-6
    # Detail differences are seen with or without the residual.
    y = x + 0.05 * torch.randn_like(x)
    assert laplacian_pyramid_loss(y, x, include_residual=False).item() > 0.01


def test_laplacian_band_of_a_smooth_ramp_is_empty_inside():
    # the expand puts each low-pass sample back on its own pixel: no half-pixel shift leaking the slope
    from zaug.losses import _laplacian_step

    ramp = (0.01 * torch.arange(64.0))[:, None].expand(64, 64)[None, None]
    band, _ = _laplacian_step(ramp + 0.02 * torch.arange(64.0))
    assert band[..., 6:-6, 6:-6].abs().max().item() < 1e-5


def test_distill_loss_sums_the_student_stages_as_rife():
    flows, merged = [torch.ones(1, 4, 8, 8)] * 3, [torch.ones(1, 1, 8, 8)] * 3  # student off by 1 everywhere
    zero = torch.zeros(1, 1, 8, 8)
    assert distill_loss(flows, merged, torch.zeros(1, 4, 8, 8), zero, zero).item() == pytest.approx(3.0)


def test_laplacian_loss_gradient():
    x = torch.rand(1, 1, 33, 31, requires_grad=True)
    laplacian_pyramid_loss(x, torch.zeros_like(x)).backward()
    assert torch.all(torch.isfinite(x.grad)) and x.grad.abs().sum() > 0


def test_gradient_penalty():
    torch.manual_seed(0)
    critic = Critic(**critic_preset("fast"))
    real, fake = torch.rand(3, 1, 64, 64), torch.rand(3, 1, 64, 64).requires_grad_()
    gp = gradient_penalty(critic, real, fake)
    assert gp.ndim == 0 and torch.isfinite(gp) and gp.item() >= 0.0
    gp.backward()
    # Input gradients depend on every weight (biases only shift the LeakyReLU pattern).
    assert all(p.grad is not None for n, p in critic.named_parameters() if n.endswith("weight"))
    assert fake.grad is None  # the fake batch is detached

    # A linear "critic" with unit-norm gradient has zero penalty.
    def unit(x):
        return x.flatten(1).sum(1) / math.sqrt(x[0].numel())

    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-8)


def test_charbonnier():
    x = torch.rand(2, 1, 8, 8)
    assert charbonnier(x, x, eps=1e-3).item() == pytest.approx(1e-3, rel=1e-5)
    assert charbonnier(x + 0.5, x).item() == pytest.approx(math.sqrt(0.25 + 1e-6), rel=1e-5)
