"""The demo: zaug on the sample stack shipped with the package.

It removes every second plane of the sample (a real confocal stack), trains
ZAugNet (``fast`` preset) on the remaining planes only, reconstructs the
removed planes, scores them against linear and cubic interpolation and the
smoothing oracle, and writes the reconstructed stack, the model and a report.
"""

from __future__ import annotations

from pathlib import Path

from .errors import OutputError
from .evaluate import evaluate_drop_slice, format_table
from .io import write_volume
from .io._atomic import clear_own_folder
from .methods import resolve
from .predict import upsample_z
from .report import write_drop_slice_report
from .sample import load_sample, sample_path

FACTOR = 2
#: What the demo writes in its folder (an earlier demo's are replaced; anything else is refused).
DEMO_ENTRIES = (".zaug-demo", "report", "model", f"sample_x{FACTOR}_zaugnet.tif", f"sample_x{FACTOR}_cubic.tif")


def run_demo(output: str | Path = "demo_output", minutes: float = 4.0, train: bool = True,
             device: str = "auto", steps: int | None = None, print_fn=print) -> dict:
    """Run the demo and return the evaluation result (without arrays).

    Parameters
    ----------
    output : path-like
        Folder for ``report/``, ``model/`` and the reconstructed stack; replaced
        if it holds an earlier demo.
    minutes : float
        Training budget of the demo model.
    train : bool
        Train ZAugNet; when False only classical methods are evaluated.
    steps : int, optional
        Train for a number of steps instead of minutes (tests).
    """
    out = Path(output)
    if out.exists():
        if not (out / ".zaug-demo").exists():
            raise OutputError(f"{out} exists and is not an earlier demo output; choose another --output.")
        clear_own_folder(out, DEMO_ENTRIES, "an earlier demo output")
    out.mkdir(parents=True, exist_ok=True)
    (out / ".zaug-demo").write_text("folder written by 'zaug demo'\n")
    volume = load_sample()
    print_fn(f"sample: {sample_path().name} {volume} (attribution: zaug/sample/ATTRIBUTION.md)")
    kept = volume.replace(data=volume.data[::FACTOR], voxel_size=(volume.voxel_size[0] * FACTOR,) + volume.voxel_size[1:])
    methods = ["linear", "cubic"]
    options = {"device": device, "preset": "fast", "minutes": None if steps else minutes, "steps": steps,
               "seed": 0, "adversarial": True, "model_dir": str(out / "model"), "progress": True}
    if train:
        methods.append("zaugnet")
        print_fn(f"training ZAugNet (fast preset, {f'{steps} steps' if steps else f'{minutes:g} min'}) "
                 f"on the {kept.nz} kept planes; the {volume.nz - kept.nz} removed planes are the test set")
    result = evaluate_drop_slice(volume, FACTOR, methods, train_options=options, keep_predictions=True,
                                 log=print_fn)
    report = write_drop_slice_report(result, out / "report")
    model = resolve(str(out / "model"), device=device) if train else resolve("cubic")
    recon = upsample_z(kept, model, factor=FACTOR)
    stack_path = write_volume(recon, out / f"sample_x{FACTOR}_{model.name}.tif")
    print_fn(format_table(result))
    print_fn(f"reconstructed stack: {stack_path} ({recon.nz} planes, z voxel size {recon.voxel_size[0]:g} "
             f"{recon.unit}); report: {report}")
    return {k: v for k, v in result.items() if k != "arrays"}
