#!/bin/bash
# twenty-fourth/fifth sessions: x4 of the other three volumes (4 minutes), ZAugNet+ x2 with its transfer row (10 minutes)
# ZAUG_SRC=/path/to/a/copy/of/src runs a snapshot of the package (so that editing the tree cannot break a run's import)
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../../shared/data
PY=$HERE/../../../../.venv/bin/python
[ -n "${ZAUG_SRC:-}" ] && export PYTHONPATH=$ZAUG_SRC
cd "$HERE"
run() {  # name file factor minutes methods
    $PY -m zaug evaluate $D/$2 --factor $3 --methods linear,cubic,$5 --minutes $4 --seed 0 --json > $1.json 2> $1.log
}
run gala_x4 gala_fibsem_train-image.tif 4 4 zaugnet
run vessels_x4 vesselexpress_lsfm_vessels_000.tif 4 4 zaugnet
run p3d_x4 pytorch3dunet_sample_patch_raw.tif 4 4 zaugnet
run cs3_plus_x2 cellseg3d_mesospim_c5image.tif 2 10 zaugnet+
run c3d_plus_x2 cells3d_nuclei.tif 2 10 zaugnet+
