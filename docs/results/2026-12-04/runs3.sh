#!/bin/bash
# twenty-second session: does ZAugNet+ (trained on several gaps) avoid ZAugNet's loss on cellseg3d x2?
D=/work/shared/data
Z=/work/main/.venv/bin/zaug
cd /work/main/docs/results/2026-12-04
$Z evaluate $D/cellseg3d_mesospim_c5image.tif --factor 2 --methods linear,cubic,zaugnet+ --minutes 10 --seed 0 \
    --report cs3_x2_plus --json > cs3_x2_plus.json 2> cs3_x2_plus.log
