#!/bin/bash
# twenty-second session, after the final check: x4 on cells3d and cellseg3d, and x2 on the other three, 4 minutes each
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../shared/data
Z=$HERE/../../../.venv/bin/zaug
cd "$HERE"
for spec in cells3d_nuclei:c3d:4 cellseg3d_mesospim_c5image:cs3:4 gala_fibsem_train-image:gala:2 \
            vesselexpress_lsfm_vessels_000:vessels:2 pytorch3dunet_sample_patch_raw:p3d:2; do
  IFS=: read file name k <<< "$spec"
  $Z evaluate $D/$file.tif --factor $k --methods linear,cubic,zaugnet --minutes 4 --seed 0 \
      --report ${name}_x$k --json > ${name}_x$k.json 2> ${name}_x$k.log
done
