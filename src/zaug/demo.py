"""The demo: zaug on the sample stack shipped with the package.

It removes every second plane of the sample (a real confocal stack), trains
ZAugNet (``fast`` preset) on the remaining planes only, reconstructs the
removed planes, scores them against linear and cubic interpolation and the
smoothing oracle, and writes the reconstructed stack, the model and a report.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import OutputError
from .evaluate import drop_slice_split, evaluate_drop_slice, format_table
from .io import write_volume
from .io._atomic import check_own_folder, clear_own_folder, folder_beside
from .methods import zaugnet
from .methods._common import MODEL_FOLDER_ENTRIES
from .predict import cast_like, keep_acquired, resampled_volume
from .report import report_files, write_drop_slice_report
from .sample import load_sample, sample_path
from .train import Budget

FACTOR = 2
#: What the demo writes in its folder, and in its folders (an earlier demo's are replaced; anything else is refused).
DEMO_ENTRIES = {".zaug-demo": None, "report": report_files("drop-slice"), "model": MODEL_FOLDER_ENTRIES,
                f"sample_x{FACTOR}_zaugnet.tif": None, f"sample_x{FACTOR}_cubic.tif": None}


def run_demo(output: str | Path = "demo_output", minutes: float = 4.0, train: bool = True,
             device: str = "auto", steps: int | None = None, print_fn=print) -> dict:
    """Run the demo and return the evaluation result (without arrays).

    Parameters
    ----------
    output : path-like
        Folder for ``report/``, ``model/`` and the reconstructed stack; replaced
        if it holds an earlier demo (and nothing else), made if absent or empty.
        The demo is built in a hidden folder beside it and moved in when
        complete, so an interrupted run leaves an earlier demo as it was.
    minutes : float
        Training budget of the demo model.
    train : bool
        Train ZAugNet; when False only classical methods are evaluated.
    steps : int, optional
        Train for a number of steps instead of minutes (tests).
    """
    if train:
        Budget(steps=steps, minutes=None if steps else minutes)  # refused before anything is written
    out = Path(output)
    earlier = out.exists() and not (out.is_dir() and not any(out.iterdir()))
    if earlier and not (out / ".zaug-demo").exists():
        raise OutputError(f"{out} exists and is not an earlier demo output; choose another --output.")
    if earlier:
        check_own_folder(out, DEMO_ENTRIES, "an earlier demo output")
    # built beside, then moved in: a demo interrupted or failed half-way leaves the earlier one whole
    with folder_beside(out, f"the demo in {out}") as stage:
        result, written = _run(stage, minutes, train, device, steps, print_fn)
        if earlier:
            clear_own_folder(out, DEMO_ENTRIES, "an earlier demo output")
        out.mkdir(parents=True, exist_ok=True)
        for entry in sorted(stage.iterdir(), key=lambda p: p.name != ".zaug-demo"):  # the marker first
            os.replace(entry, out / entry.name)
    recon, name = written
    print_fn(format_table(result))
    print_fn(f"reconstructed stack: {out / name} ({recon.nz} planes, z voxel size {recon.voxel_size[0]:g} "
             f"{recon.unit}); report: {out / 'report' / 'report.md'}")
    return {k: v for k, v in result.items() if k != "arrays"}


def _run(out: Path, minutes, train, device, steps, print_fn):
    """The demo's work, written into ``out``: the evaluation result, and the reconstruction with its file name."""
    (out / ".zaug-demo").write_text("folder written by 'zaug demo'\n", encoding="utf-8")
    volume = load_sample()
    print_fn(f"sample: {sample_path().name} {volume} (attribution: zaug/sample/ATTRIBUTION.md)")
    used, kept_index, removed = drop_slice_split(volume.nz, FACTOR)
    beyond = volume.nz - used
    methods = ["linear", "cubic"]
    options = {"device": device, "preset": "fast", "minutes": None if steps else minutes, "steps": steps,
               "seed": 0, "adversarial": True, "model_dir": str(out / "model"), "progress": True}
    if train:
        methods.append("zaugnet")
        print_fn(f"training ZAugNet (fast preset, {f'{steps} steps' if steps else f'{minutes:g} min'}) "
                 f"on the {len(kept_index)} kept planes; the {len(removed)} removed planes between them are the "
                 f"test set" + (f" ({beyond} more, beyond the last kept plane, {'is' if beyond == 1 else 'are'} "
                                f"left out)" if beyond else ""))
    result = evaluate_drop_slice(volume, FACTOR, methods, train_options=options, keep_predictions="raw",
                                 log=print_fn)
    write_drop_slice_report(result, out / "report")
    name = "zaugnet" if train else "cubic"
    # the output's record names the model that made it (folder, weights digest, steps), as zaug predict's does
    method = zaugnet.load(out / "model", device="cpu") if train else name
    recon = _reconstruction(volume, kept_index, used, result["arrays"]["raw"][name], method)
    write_volume(recon, out / f"sample_x{FACTOR}_{name}.tif")
    return result, (recon, f"sample_x{FACTOR}_{name}.tif")


def _reconstruction(volume, kept_index, used, planes, method):
    """The evaluation's reconstruction as a stack in the sample's type, acquired planes exact; ``method`` the
    name or the loaded model that made it."""
    kept = volume.replace(data=volume.data[kept_index],
                          voxel_size=(volume.voxel_size[0] * FACTOR,) + volume.voxel_size[1:])
    z_out = volume.z_coords()[:used]
    data = keep_acquired(cast_like(planes, volume.dtype), kept.data, kept.z_coords(), z_out)
    return resampled_volume(kept, data, z_out, method)
