"""How well the jackknife standard error of KID predicts the spread of KID over repeated draws.

Sets of Student-t (5 degrees of freedom) features, 16 dimensions, drawn 400 times per case; compares the
standard deviation of the KID estimates with the mean and median of their jackknife standard errors.
Run: python kid_se_check.py > kid_se_check.log
"""
import numpy as np

from zaug.fid import kernel_distance, kernel_distance_and_error

rng = np.random.default_rng(1)
a, b = rng.normal(size=(20, 5)), rng.normal(size=(25, 5)) + 0.3
left_a = np.array([kernel_distance(np.delete(a, i, 0), b) for i in range(20)])
left_b = np.array([kernel_distance(a, np.delete(b, j, 0)) for j in range(25)])
brute = np.sqrt(19 / 20 * ((left_a - left_a.mean()) ** 2).sum() + 24 / 25 * ((left_b - left_b.mean()) ** 2).sum())
print(f"closed form {kernel_distance_and_error(a, b)[1]:.15g}  one by one {brute:.15g}")
print("shift  m    n    sd(KID)    mean SE    mean/sd  median/sd")
for shift, m, n in ((0.0, 30, 30), (0.5, 30, 30), (0.5, 29, 60), (1.0, 29, 29), (0.0, 128, 128), (0.25, 128, 128)):
    draws = np.array([kernel_distance_and_error(rng.standard_t(5, (m, 16)), rng.standard_t(5, (n, 16)) + shift)
                      for _ in range(400)])
    kids, ses = draws.T
    print(f"{shift:5.2f} {m:4d} {n:4d} {kids.std():10.4g} {ses.mean():10.4g} {ses.mean() / kids.std():9.3f}"
          f" {np.median(ses) / kids.std():9.3f}")
