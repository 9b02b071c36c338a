#!/bin/bash
# twenty-third session: drop-slice runs with the 'transfer' row (same model, its training gap only), one at a time
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../../shared/data
Z=$HERE/../../../../.venv/bin/zaug
cd "$HERE"
run() {  # name file factor minutes
    $Z evaluate $D/$2 --factor $3 --methods linear,cubic,zaugnet --minutes $4 --seed 0 --json > $1.json 2> $1.log
}
run cs3_x2 cellseg3d_mesospim_c5image.tif 2 10
run c3d_x2 cells3d_nuclei.tif 2 10
run gala_x2 gala_fibsem_train-image.tif 2 4
run vessels_x2 vesselexpress_lsfm_vessels_000.tif 2 4
run p3d_x2 pytorch3dunet_sample_patch_raw.tif 2 4
run cs3_x4 cellseg3d_mesospim_c5image.tif 4 4
run c3d_x4 cells3d_nuclei.tif 4 4
echo done > runs.done
