#!/bin/bash
# twenty-second session: the issue-3 drop-slice runs with the code of this session's main, one at a time
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../shared/data
Z=$HERE/../../../.venv/bin/zaug
cd "$HERE"
$Z evaluate $D/cells3d_nuclei.tif --factor 2 --methods linear,cubic,zaugnet --minutes 10 --seed 0 \
    --report c3d_x2 --json > c3d_x2.json 2> c3d_x2.log
$Z evaluate $D/cellseg3d_mesospim_c5image.tif --factor 2 --methods linear,cubic,zaugnet --minutes 10 --seed 0 \
    --report cs3_x2 --json > cs3_x2.json 2> cs3_x2.log
