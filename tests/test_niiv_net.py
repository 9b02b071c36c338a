import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zaug.data.lateral import degrade_avgpool, target_rows
from zaug.nets.edsr_liif import NIIV, niiv_preset, query_grid, rows_to_coords


def _n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _randomise_last_layer(net: NIIV) -> NIIV:
    torch.nn.init.normal_(net.decoder[-1].weight, std=0.1)  # presets start at zero (pure bilinear)
    return net


def test_parameter_counts_of_the_presets():
    paper, fast = NIIV(**niiv_preset("paper")), NIIV(**niiv_preset("fast"))
    assert _n_params(paper) == pytest.approx(1.5e6, rel=0.1)  # 1,501,633
    assert _n_params(fast) < 0.2e6
    with pytest.raises(ValueError):
        niiv_preset("huge")


@pytest.mark.parametrize("lr_shape,out_shape", [((5, 12), (20, 12)), ((7, 9), (31, 9)), ((6, 6), (9, 15)),
                                                ((3, 4), (3, 4))])
def test_any_input_size_and_any_output_scale(lr_shape, out_shape):
    torch.manual_seed(0)
    net = _randomise_last_layer(NIIV(**niiv_preset("fast")))
    lr = torch.rand(2, 1, *lr_shape)
    assert net.predict_plane(lr, out_shape).shape == (2, 1) + out_shape
    coords = torch.rand(2, 17, 2) * 2 - 1
    values = net(lr, coords)
    assert values.shape == (2, 17) and values.requires_grad
    shared = net(lr, coords[0])  # (Q, 2): the same queries for every plane of the batch
    assert torch.allclose(shared, net(lr, coords[:1].expand(2, -1, -1)), atol=1e-6)


def test_untrained_residual_network_is_bilinear_interpolation():
    net = NIIV(**niiv_preset("fast"))
    lr = torch.rand(1, 1, 6, 10)
    got = net.predict_plane(lr, (24, 10))
    want = F.interpolate(lr, size=(24, 10), mode="bilinear", align_corners=False)
    assert torch.allclose(got, want, atol=1e-6)
    # rows in low-res sample units: integer rows are the input rows
    rows = net.predict_coords(lr, rows_to_coords(np.arange(6.0), 6, 10)).reshape(1, 1, 6, 10)
    assert torch.allclose(rows, lr, atol=1e-6)


def test_decoding_in_chunks_equals_one_chunk():
    torch.manual_seed(1)
    net = _randomise_last_layer(NIIV(**niiv_preset("fast"))).eval()
    lr = torch.rand(3, 1, 8, 16)
    whole = net.predict_plane(lr, (32, 16), chunk=10**6)
    for chunk in (1000, 77):
        assert torch.allclose(net.predict_plane(lr, (32, 16), chunk=chunk), whole, atol=1e-6)


def test_cell_size_input_is_optional_and_enforced():
    kwargs = dict(niiv_preset("fast"), use_cell=True)
    net = _randomise_last_layer(NIIV(**kwargs))
    lr = torch.rand(1, 1, 4, 8)
    assert net.predict_plane(lr, (16, 8)).shape == (1, 1, 16, 8)
    with pytest.raises(ValueError):
        net(lr, query_grid(4, 8))
    assert net(lr, query_grid(4, 8), torch.tensor([0.25, 1.0])).shape == (1, 32)


def test_query_grid_matches_rows_to_coords_for_average_pooling():
    # a high-res grid of h = 4 * h_lr rows sits where target_rows puts the avgpool targets
    np.testing.assert_allclose(query_grid(24, 5).numpy(), rows_to_coords(target_rows(24, 4, "avgpool"), 6, 5).numpy(),
                               atol=1e-6)


def test_a_few_adam_steps_lower_the_l1_loss():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:24]
    hr = np.stack([np.sin(y / rng.uniform(1.0, 2.5) + rng.uniform(0, 6)) * np.cos(x / 4 + k) for k in range(4)])
    lr = np.stack([degrade_avgpool(p, 4, 0) for p in hr])
    hr_t, lr_t = torch.tensor(hr, dtype=torch.float32), torch.tensor(lr[:, None])
    coords = rows_to_coords(target_rows(32, 4, "avgpool"), 8, 24)
    net = NIIV(**niiv_preset("fast"))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        loss = (net(lr_t, coords) - hr_t.reshape(4, -1)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * losses[0]


def test_decoding_holds_at_most_chunk_queries_over_the_whole_batch(monkeypatch):
    # the decoder's memory grows with planes x queries: 64 planes of a wide plane must not decode 64 chunks at once
    net = NIIV(**niiv_preset("fast")).eval()
    sizes = []
    real = net.decode
    monkeypatch.setattr(net, "decode", lambda latent, lr, coords, cell: sizes.append(coords.shape[:2])
                        or real(latent, lr, coords, cell))
    net.predict_plane(torch.rand(4, 1, 8, 16), (32, 16), chunk=100)
    assert sizes and all(b * q <= 100 for b, q in sizes) and sum(q for _, q in sizes) == 32 * 16
