"""Lateral and axial spectral extents (cycles/um, per-frequency axial noise floor) of the outputs of run.sh.

python extents.py WORKDIR [DATA]   (DATA: ../shared/data by default; prints a markdown table)
"""
import sys
from pathlib import Path

from zaug.io import read_volume
from zaug.isotropy import axial_lateral_spectra

work = Path(sys.argv[1])
data = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data")
rows = [("input", data / "neubias_xyz_8bit__chromosomes.tif")]
rows += [(name, work / f"{name}.tif") for name in ("cubic", "selfnet", "resin")]
print("| stack | lateral extent (1/um) | axial extent (1/um) | ratio |\n|---|---|---|---|")
for name, path in rows:
    s = axial_lateral_spectra(read_volume(path))
    print(f"| {name} | {s['lateral_extent']:.3f} | {s['axial_extent']:.3f} | {s['extent_ratio']:.3f} |")
