#!/bin/bash
# Drop-slice runs with the trained model kept (models in ../../../../runs/s31/, not committed), one after another.
# ZAUG_SRC=/path/to/a/copy/of/src runs a snapshot of the package (so that editing the tree cannot break an import)
HERE=$(cd "$(dirname "$0")" && pwd); D=$HERE/../../../../../shared/data; R=$HERE/../../../../runs/s31
PY=$HERE/../../../../.venv/bin/python; KEEP=$HERE/../../2026-11-22/scripts/za_keep.py
[ -n "${ZAUG_SRC:-}" ] && export PYTHONPATH=$ZAUG_SRC
mkdir -p $R && cd $R
keep() { $PY $KEEP $D/$2 $3 $1 minutes=$4 seed=0 > $1.log 2>&1; }
keep c3dx2 cells3d_nuclei.tif 2 10
keep vesx2 vesselexpress_lsfm_vessels_000.tif 2 4
keep galax2 gala_fibsem_train-image.tif 2 4
keep p3dx2 pytorch3dunet_sample_patch_raw.tif 2 4
keep cs3x4 cellseg3d_mesospim_c5image.tif 4 4
keep c3dx4 cells3d_nuclei.tif 4 4
keep vesx4 vesselexpress_lsfm_vessels_000.tif 4 4
keep galax4 gala_fibsem_train-image.tif 4 4
keep p3dx4 pytorch3dunet_sample_patch_raw.tif 4 4
