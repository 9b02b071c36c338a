#!/bin/bash
# twenty-second session: ZAugNet+ on cellseg3d x2 collapsed at step ~900 (runs3.sh); without the critic?
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../shared/data
Z=$HERE/../../../.venv/bin/zaug
cd "$HERE"
$Z evaluate $D/cellseg3d_mesospim_c5image.tif --factor 2 --methods linear,cubic,zaugnet+ --minutes 10 --seed 0 \
    --no-adversarial --report cs3_x2_plus_noadv --json > cs3_x2_plus_noadv.json 2> cs3_x2_plus_noadv.log
