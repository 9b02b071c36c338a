#!/bin/bash
# zaug evaluate end to end with the variance cap (the default now): the two x2 runs of 10 minutes
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../../shared/data
PY=$HERE/../../../../.venv/bin/python
[ -n "${ZAUG_SRC:-}" ] && export PYTHONPATH=$ZAUG_SRC
cd "$HERE"
run() {  # name file factor minutes
    $PY -m zaug evaluate $D/$2 --factor $3 --methods linear,cubic,zaugnet --minutes $4 --seed 0 --json > $1.json 2> $1.log
}
run cs3_x2 cellseg3d_mesospim_c5image.tif 2 10
run c3d_x2 cells3d_nuclei.tif 2 10
