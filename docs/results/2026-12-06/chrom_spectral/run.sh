#!/usr/bin/env bash
# Thirty-first session: the real chromosomes stack restored by cubic, Self-Net (--sigma auto) and RESIN,
# 6 minutes each as in ../../2026-12-02, scored by `zaug predict --report` with the per-frequency axial noise floor.
# Usage: D=../shared/data bash run.sh WORKDIR   (from the repository root, after `make install`; models and outputs
# go to WORKDIR; the reports are copied beside this script)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
D=${D:-../shared/data}
W=$1; mkdir -p "$W"
zaug() { .venv/bin/zaug "$@"; }
S=$D/neubias_xyz_8bit__chromosomes.tif
zaug predict cubic "$S" --z-spacing 0.0338542 -o "$W/cubic.tif" --report "$W/r_cubic" --overwrite
zaug train "$S" --method selfnet --sigma auto --minutes 6 --seed 0 -o "$W/m_selfnet" --overwrite
zaug predict "$W/m_selfnet" "$S" -o "$W/selfnet.tif" --report "$W/r_selfnet" --overwrite
zaug train "$S" --method resin --minutes 6 --seed 0 -o "$W/m_resin" --overwrite
zaug predict "$W/m_resin" "$S" -o "$W/resin.tif" --report "$W/r_resin" --overwrite
for r in cubic selfnet resin; do
  mkdir -p "$here/$r"; cp "$W/r_$r/report.md" "$W/r_$r/results.json" "$W/r_$r/xz_views.png" "$here/$r/"
done
