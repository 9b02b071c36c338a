#!/bin/bash
# twenty-second session: does ZAugNet+ (trained on several gaps) avoid ZAugNet's loss on cellseg3d x2?
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../shared/data
Z=$HERE/../../../.venv/bin/zaug
cd "$HERE"
$Z evaluate $D/cellseg3d_mesospim_c5image.tif --factor 2 --methods linear,cubic,zaugnet+ --minutes 10 --seed 0 \
    --report cs3_x2_plus --json > cs3_x2_plus.json 2> cs3_x2_plus.log
