"""Noise floor of the cells3d x2 drop-slice score: python c3d_noise_floor.py STACK [RAW_PREDICTION.npy]

Immerkaer's estimate of the noise variance of each removed plane (normalised as the evaluation does), overall,
in the background and in the nuclei (Otsu on the smoothed truth). A prediction of the noise-free plane cannot
score better than 10 log10(1 / variance). With a saved raw prediction of the removed planes (c3d_oracle_blends.py
writes one), the model's and linear interpolation's MSE in the same two regions."""
import sys
import numpy as np, tifffile
from scipy.ndimage import convolve, gaussian_filter
from skimage.filters import threshold_otsu
d = tifffile.imread(sys.argv[1]).astype(np.float32)
lo, hi = np.percentile(d, (0.1, 99.9)); n = np.clip((d - lo) / (hi - lo), 0, 1)
used = (len(n) - 1) // 2 * 2 + 1
truth, kept = n[1:used:2], n[0:used:2]
mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
r = np.stack([convolve(p, mask) for p in truth])[:, 1:-1, 1:-1]
sm = gaussian_filter(truth, (0, 2, 2))[:, 1:-1, 1:-1]; fg = sm > threshold_otsu(sm)
k = np.sqrt(np.pi / 2) / 6  # E|r| = sqrt(2/pi) * 6 sigma for Gaussian noise
for name, m in (("all", np.ones_like(fg)), ("background", ~fg), ("nuclei", fg)):
    var = (k * np.abs(r[m]).mean()) ** 2
    print(f"{name:10s} noise variance {var:.2e}  share {m.mean():.2f}  PSNR ceiling {10 * np.log10(1 / var):.2f} dB")
if len(sys.argv) > 2:
    raw = np.load(sys.argv[2])[:, 1:-1, 1:-1]; t = truth[:, 1:-1, 1:-1]
    lin = (0.5 * (kept[:-1] + kept[1:]))[:, 1:-1, 1:-1]
    for name, m in (("background", ~fg), ("nuclei", fg)):
        print(f"{name:10s} model MSE {np.mean((raw - t)[m] ** 2):.2e}  linear MSE {np.mean((lin - t)[m] ** 2):.2e}")
