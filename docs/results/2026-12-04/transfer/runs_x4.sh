#!/bin/bash
# the two x4 runs again (the first attempt started while the package was mid-edit and failed at import)
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../../shared/data
Z=$HERE/../../../../.venv/bin/zaug
cd "$HERE"
$Z evaluate $D/cellseg3d_mesospim_c5image.tif --factor 4 --methods linear,cubic,zaugnet --minutes 4 --seed 0 --json > cs3_x4.json 2> cs3_x4.log
$Z evaluate $D/cells3d_nuclei.tif --factor 4 --methods linear,cubic,zaugnet --minutes 4 --seed 0 --json > c3d_x4.json 2> c3d_x4.log
echo done > runs_x4.done
