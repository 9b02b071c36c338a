#!/bin/bash
# twenty-second session: runs3.sh again with the restart after a collapse (zaug.train.COLLAPSE_DB)
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../shared/data
Z=$HERE/../../../.venv/bin/zaug
cd "$HERE"
$Z evaluate $D/cellseg3d_mesospim_c5image.tif --factor 2 --methods linear,cubic,zaugnet+ --minutes 10 --seed 0 \
    --report cs3_x2_plus_restart --json > cs3_x2_plus_restart.json 2> cs3_x2_plus_restart.log
