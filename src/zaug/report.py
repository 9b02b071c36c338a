"""Markdown reports with PNG figures for evaluations."""

from __future__ import annotations

import functools
import inspect
import json
import os
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from . import provenance
from .classic import interpolate_stack
from .data.lateral import clearest_stack_index
from .errors import OutputError
from .evaluate import exact_notes, format_table, verdict
from .fid import distance_columns
from .io import atomic_path
from .io._atomic import check_parent_folder, folder_beside
from .volume import Volume, position_tolerance

#: kind of report -> the files its writer puts in the report folder (see :func:`report_files`)
REPORT_KINDS = ("prediction", "drop-slice", "restoration", "oblique")


def json_text(result) -> str:
    """``result`` as strict JSON: a value that is not a finite number (PSNR of identical planes, a median of
    nothing) becomes null, which every JSON reader takes; Python's NaN and Infinity many refuse (jq, browsers)."""
    def finite(value):
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        if isinstance(value, (float, np.floating)):
            return float(value) if np.isfinite(value) else None
        if isinstance(value, np.integer):
            return int(value)
        return value

    return json.dumps(finite(result), indent=2, allow_nan=False)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def report_files(kind: str, methods=()) -> list[str]:
    """The names of the files the report writer of ``kind`` puts in its folder.

    ``kind`` is one of :data:`REPORT_KINDS`; ``methods`` are the evaluated
    methods (a restoration report draws the spectra of each). The command line
    checks these names before any work, so that an existing report is never
    replaced without ``--overwrite``.

    >>> report_files("restoration", ["cubic", "zaugnet+"])[-2:]
    ['spectra_cubic.png', 'spectra_zaugnetplus.png']
    """
    if kind not in REPORT_KINDS:
        raise ValueError(f"unknown report kind {kind!r}")
    names = {"prediction": ["xz_views.png", "spectra_input.png", "spectra_output.png"],
             "drop-slice": ["orthoviews.png", "cf_psnr_sweep.png"],
             "restoration": ["xz_views.png", "cf_psnr_sweep.png", _spectra_name("original")]
             + [_spectra_name(m) for m in dict.fromkeys(methods)],
             "oblique": ["zy_sections.png", "xy_planes.png"]}[kind]
    return ["report.md", "results.json"] + names


def check_report_folder(folder: str | Path, names, overwrite: bool = False) -> Path:
    """Refuse, in one sentence, a report folder that would replace files (or that cannot be a folder).

    Parameters
    ----------
    folder : path-like
        The report folder (created by the writer when absent, with its parents).
    names : iterable of str
        The files the report will write there (:func:`report_files`).
    overwrite : bool
        Allow replacing those files.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; give --report a folder (new or holding an earlier report).")
    # the report is built beside its folder, then moved in: the folder above (or the nearest that exists) and
    # the folder itself must be writable
    check_parent_folder(out, f"the report folder {out}")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"the folder {out} is not writable, so the report cannot be written there; choose "
                          "another --report folder.")
    present = [name for name in names if (out / name).exists()] if out.is_dir() else []
    ours = "report.md" not in present or (out / "report.md").read_text(encoding="utf-8",
                                                                       errors="replace").startswith("# zaug ")
    if not ours:
        raise OutputError(f"{out} holds a report.md that zaug did not write, which --overwrite does not replace; "
                          "choose another --report folder.")
    if present and not overwrite:
        shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
        raise OutputError(f"{out} already holds {shown}; pass --overwrite to replace the report, or choose "
                          "another --report folder.")
    return out


def _staged(writer):
    """Make ``writer(..., out_dir, overwrite=...)`` write its report into a hidden folder beside ``out_dir``, then
    move the files into ``out_dir`` in one quick pass (``report.md`` last): interrupted or failed half-way (a full
    disk), the writer leaves the earlier report whole, or no folder, not a mix of two runs' files."""
    signature = inspect.signature(writer)

    @functools.wraps(writer)
    def staged(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        final = Path(bound.arguments["out_dir"])
        overwrite = bool(bound.arguments.get("overwrite", False))
        check_report_folder(final, (), overwrite)  # a file where the folder should be: refused first
        with folder_beside(final, f"the report in {final}") as stage:
            bound.arguments["out_dir"] = stage
            report = Path(writer(*bound.args, **bound.kwargs))
            names = sorted((p.name for p in stage.iterdir()), key=lambda name: (name == "report.md", name))
            check_report_folder(final, names[-1:] + names[:-1], overwrite)  # what it would replace, report first
            final.mkdir(exist_ok=True)
            for name in names:
                os.replace(stage / name, final / name)
        return final / report.relative_to(stage)

    return staged


def report_folder(out_dir: str | Path, kind: str, methods=(), overwrite: bool = False) -> Path:
    """The folder of a report of ``kind``, made, after :func:`check_report_folder` has allowed it."""
    out = check_report_folder(out_dir, report_files(kind, list(methods)), overwrite)
    out.mkdir(parents=True, exist_ok=True)
    return out


@_staged
def write_drop_slice_report(result: dict, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write ``report.md``, ``results.json`` and figures for a drop-slice evaluation.

    ``result`` must come from ``evaluate_drop_slice(..., keep_predictions=True)``
    for the orthogonal views; the table and sweep are written regardless.
    Returns the path of the Markdown report.
    An existing report in ``out_dir`` is replaced only with ``overwrite``
    (:func:`check_report_folder`).
    """
    out = report_folder(out_dir, "drop-slice", result["methods"], overwrite)
    arrays = result.get("arrays", {})
    figures = []
    if arrays:
        figures.append(_orthoviews(arrays, result, out / "orthoviews.png"))
    figures.append(_sweep_figure(result, out / "cf_psnr_sweep.png"))
    plain = {k: v for k, v in result.items() if k != "arrays"}
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json_text(plain), encoding="utf-8")
    lines = [f"# zaug drop-slice evaluation, x{result['factor']}", "",
             f"Input: `{result['input']}`, shape {result['shape']}, voxel size "
             f"{', '.join(f'{v:g}' for v in result['voxel_size'])} {result['unit']} (z, y, x).", "",
             "## Conventions", ""]
    lines += [f"- {c}" for c in result["conventions"]]
    fid = "fid" in result
    lines += ["", "## Results", "", "| method | PSNR dB | SSIM | RMSE | CF-PSNR low | mid | high | sharpness | time s |"
              + (distance_columns(markdown=True) if fid else ""),
              "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if fid else "")]
    for name, r in result["methods"].items():
        label = name + (f" (sigma {r['sigma']:.2f})" if "sigma" in r else "")
        cf = r["cf_psnr"]
        lines.append(f"| {label} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['rmse']:.5f} | {cf['low']:.2f} | "
                     f"{cf['mid']:.2f} | {cf['high']:.2f} | {r['sharpness']:.3f} | {r['seconds']:.1f} |"
                     + (distance_columns(r, markdown=True) if fid else ""))
    lines += [line for note in exact_notes(result["methods"]) for line in ("", note)]
    if result["gains"]:
        lines += ["", "## In one line", ""]
        lines += [f"- {verdict(name, g)}" for name, g in result["gains"].items()]
    learned = learned_lines(result["methods"])
    if learned:
        lines += ["", "## Learned methods", ""] + [f"- {line}" for line in learned]
    lines += [line for w in result.get("warnings", []) for line in ("", f"**Warning:** {w}")]
    lines += downstream_section(result)
    lines += ["", "## Figures", ""]
    lines += [f"![{f.stem}]({f.name})" for f in figures]
    lines += ["", "```", format_table(result), "```", ""]
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return report


def learned_lines(methods: dict) -> list[str]:
    """How each learned method of an evaluation was trained and used: steps, held-out self-check, mode."""
    lines = []
    for name, r in methods.items():
        training = r.get("training")
        if not training:
            continue
        line = f"{name}: trained {training.get('steps')} steps on the kept planes only"
        if training.get("seconds"):
            line += f" ({training['seconds']:.0f} s)"
        gain = training.get("self_check_gain_db")
        if gain is not None:
            planes = (r.get("self_check") or {}).get("planes")
            line += (f"; self-check on {planes or 'the'} planes held out of them: {gain:+.2f} dB over the best "
                     "interpolation, at twice the gap scored here")
        if r.get("mode"):
            line += f"; this row uses the model in '{r['mode']}' mode"
        lines.append(line + ".")
    return lines


def downstream_section(result: dict) -> list[str]:
    """Markdown lines for the downstream checks of an evaluation, if it ran them."""
    from .downstream import table_rows, truth_line

    down = result.get("downstream")
    if not down:
        return []
    headers, rows = table_rows(down)
    lines = ["", f"## Downstream: {down['kind']}", ""] + [f"- {c}" for c in down["conventions"]]
    lines += [f"- threshold {down['threshold']:.3f} on the [0, 1] data", "",
              truth_line(down, result["unit"]).capitalize() + ".", "",
              "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _orthoviews(arrays: dict, result: dict, path: Path) -> Path:
    """xy plane at a removed z and an xz section, for truth, input and each method."""
    plt = _pyplot()
    truth = arrays["truth"]
    kept, removed = arrays["kept"], arrays["removed"]
    z = int(removed[len(removed) // 2])
    y = truth.shape[1] // 2
    positions = np.arange(len(truth), dtype=np.float64)
    nearest = interpolate_stack(truth[kept], kept.astype(np.float64), positions, "nearest")
    panels = [("ground truth", truth), ("input (kept planes, nearest)", nearest)]
    panels += [(name, arrays[name]) for name in result["methods"] if name in arrays]
    vz, vy, vx = result["voxel_size"]
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 5.6), squeeze=False)
    for col, (title, stack) in enumerate(panels):
        axes[0, col].imshow(stack[z], cmap="gray", vmin=0, vmax=1, aspect=vy / vx)
        axes[0, col].set_title(title, fontsize=8)
        axes[1, col].imshow(stack[:, y, :], cmap="gray", vmin=0, vmax=1, aspect=vz / vx, interpolation="nearest")
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel(f"xy, removed plane z={z}", fontsize=8)
    axes[1, 0].set_ylabel(f"xz at y={y}", fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


def _sweep_figure(result: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    drawn = 0
    for name, r in result["methods"].items():
        points = [(float(k), v) for k, v in r["cf_psnr_sweep"].items() if v is not None and np.isfinite(v)]
        if points:  # an exact reconstruction has no finite PSNR to draw
            ax.plot(*zip(*points), marker="o", ms=3, label=name)
            drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no finite PSNR to draw: every reconstruction is exact", ha="center",
                transform=ax.transAxes, fontsize=9)
    ax.set_xlabel("radius kept (fraction of Nyquist)")
    ax.set_ylabel("Fourier-clipped PSNR (dB)")
    ax.set_title(f"CF-PSNR sweep, x{result['factor']}")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


def _save(fig, path: Path, plt) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


@_staged
def write_restoration_report(result: dict, out_dir: str | Path, overwrite: bool = False) -> Path:
    """``report.md``, ``results.json`` and figures for a restoration evaluation.

    ``result`` must come from ``evaluate_restoration(..., keep_predictions=True)``
    for the xz views and spectra; the table and sweep are written regardless.
    An existing report in ``out_dir`` is replaced only with ``overwrite``
    (:func:`check_report_folder`).
    """
    from .evaluate_restore import format_restoration_table, isotropy_notes, restoration_verdicts, simulation_words

    out = report_folder(out_dir, "restoration", result["methods"], overwrite)
    arrays = result.get("arrays", {})
    figures = []
    if arrays:
        figures.append(_xz_views(arrays, result, out / "xz_views.png"))
        figures += _spectra_figures(arrays, result, out)
    figures.append(_sweep_figure(result, out / "cf_psnr_sweep.png"))
    plain = {k: v for k, v in result.items() if k != "arrays"}
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json_text(plain), encoding="utf-8")
    ref = result["reference"]
    lines = [f"# zaug restoration evaluation, x{result['factor']:g} ({simulation_words(result)})", "",
             f"Input: `{result['input']}`, shape {result['shape']}, voxel size "
             f"{', '.join(f'{v:g}' for v in result['voxel_size'])} {result['unit']} (z, y, x).", "",
             "## Conventions", ""]
    lines += [f"- {c}" for c in result["conventions"]]
    lines += [line for w in result.get("warnings", []) for line in ("", f"**Warning:** {w}")]
    fid = "fid" in result
    lines += ["", "## Results", "",
              "| method | PSNR dB | SSIM | CF-PSNR low | mid | high | sharpness | isotropy ratio | spectral extent ratio |"
              + (distance_columns(markdown=True) if fid else ""),
              "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if fid else "")]
    for label, r in (("original (reference)", ref["original"]), ("simulated input", ref["input"])):
        lines.append(f"| {label} | | | | | | | {r['isotropy_ratio']:.3f} | {r['spectral_extent_ratio']:.3f} |"
                     + (distance_columns({}, markdown=True) if fid else ""))
    for name, r in result["methods"].items():
        cf = r["cf_psnr"]
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {cf['low']:.2f} | {cf['mid']:.2f} | "
                     f"{cf['high']:.2f} | {r['sharpness']:.3f} | {r['isotropy_ratio']:.3f} | "
                     f"{r['spectral_extent_ratio']:.3f} |" + (distance_columns(r, markdown=True) if fid else ""))
    lines += [line for note in isotropy_notes(result) for line in ("", note)]
    verdicts = restoration_verdicts(result)
    if verdicts:
        lines += ["", "## In one line", ""] + [f"- {v}" for v in verdicts]
    lines += downstream_section(result)
    lines += ["", "## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figures]
    lines += ["", "```", format_restoration_table(result), "```", ""]
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return report


def _xz_views(arrays: dict, result: dict, path: Path) -> Path:
    plt = _pyplot()
    truth, planes = arrays["truth"], arrays["planes"]
    y = truth.shape[1] // 2
    positions = arrays["input_positions"]
    nearest = interpolate_stack(arrays["input"], positions, np.clip(planes.astype(np.float64), positions[0],
                                                                    positions[-1]), "nearest")
    panels = [("original", truth), ("input (nearest)", nearest)]
    panels += [(name, arrays[name]) for name in result["methods"] if name in arrays]
    aspect = result["voxel_size"][0] / result["voxel_size"][2]  # rows z, columns x
    fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 3.2), squeeze=False)
    for col, (title, stack) in enumerate(panels):
        axes[0, col].imshow(stack[:, y, :], cmap="gray", vmin=0, vmax=1, aspect=aspect, interpolation="nearest")
        axes[0, col].set_title(title, fontsize=8)
        axes[0, col].set_xticks([])
        axes[0, col].set_yticks([])
    axes[0, 0].set_ylabel(f"xz at y={y}", fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


def _spectra_figures(arrays: dict, result: dict, out: Path) -> list[Path]:
    from .isotropy import axial_lateral_spectra, plot_spectra

    voxel = tuple(result["voxel_size"])
    paths = []
    for name in ["truth"] + [m for m in result["methods"] if m in arrays]:
        spectra = axial_lateral_spectra(Volume(arrays[name], voxel, result["unit"]))
        label = "original" if name == "truth" else name
        paths.append(plot_spectra(spectra, out / _spectra_name(label), title=f"{label}: xy vs xz spectra"))
    return paths


def _spectra_name(label: str) -> str:
    return f"spectra_{label.replace('+', 'plus').replace(':', '_')}.png"


@_staged
def write_prediction_report(before, after, out_dir: str | Path, overwrite: bool = False, model=None) -> Path:
    """How isotropic is the result? A report on a real prediction (no ground truth needed).

    Measures the isotropy ratio (axial / lateral FWHM of thin structures) and
    the axial vs lateral spectral extent of the input and of the output, each
    at its own voxel size, and draws xz sections and spectra of both. When
    the output has other planes than the input, the input linearly
    interpolated onto them is measured too: what interpolation alone gives on
    the same grid (a finer grid finds other structures), the baseline against
    which the output is read and the noise-grain warning is checked.

    Parameters
    ----------
    before, after : Volume
        The input and the output of ``zaug predict`` (of several channels or
        time points, the clearest is measured: a blank one says nothing).
    out_dir : path-like
        The report's folder (made when absent).
    overwrite : bool
        Replace an earlier report there (:func:`check_report_folder`).
    model : optional
        The model that made ``after`` (a loaded learned method): its training
        (steps, self-check) is stated, what a reader needs to trust the output.

    Returns
    -------
    Path
        The Markdown report.
    """
    from .isotropy import (ISOTROPY_RATIO_MEANING, SPECTRAL_RATIO_MEANING, axial_lateral_spectra, isotropy_ratio,
                           plot_spectra, unmeasured_sentence)

    out = report_folder(out_dir, "prediction", (), overwrite)
    index = clearest_stack_index(before)
    about = _about_stacks(before, after, index) + model_lines(model)
    rows, figures = {}, []
    for label, single, shown in _report_stacks(before, after, index):
        iso = isotropy_ratio(single)
        spectra = axial_lateral_spectra(single)
        rows[label] = {"shape": list(shown.data.shape[-3:]), "voxel_size": list(shown.voxel_size),
                       "isotropy_ratio": float(iso["ratio"]), "axial_fwhm": float(iso["axial_fwhm"]),
                       "lateral_fwhm": float(iso["lateral_fwhm"]), "profiles": int(iso["count"]),
                       "isotropy_note": iso["reason"], "spectral_extent_ratio": float(spectra["extent_ratio"])}
        if label != "input":
            rows[label]["new_plane_detail"] = new_plane_detail(shown, before.z_coords())
        if label != INTERPOLATED:
            figures.append(plot_spectra(spectra, out / f"spectra_{label}.png", title=f"{label}: xy vs xz spectra"))
    figures.insert(0, _before_after_xz(before, after, index, out / "xz_views.png"))
    unit = after.unit
    said = [w for w in (sharpened_noise(rows, unit), widened_across(rows, unit), smooth_new_planes(rows)) if w]
    for warning in said:
        warnings.warn(warning, stacklevel=2)
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json_text(dict(rows, notes=about, warnings=said)), encoding="utf-8")
    lines = ["# zaug prediction report", "",
             f"Method: `{after.metadata.get('method', '?')}`; input `{before.metadata.get('source', 'array')}`.", ""]
    lines += [f"Planes: {provenance.plane_counts(after)}.", ""] if provenance.is_made_by_zaug(after) else []
    lines += [line for note in about for line in (f"- {note}",)] + ([""] if about else [])
    lines += [
             "| | shape | voxel size (z, y, x) | isotropy ratio | axial FWHM | lateral FWHM | profiles | "
             "spectral extent ratio |", "|---|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        lines.append(f"| {label} | {r['shape']} | {', '.join(f'{v:.4g}' for v in r['voxel_size'])} {unit} | "
                     f"{r['isotropy_ratio']:.3f} | {r['axial_fwhm']:.4g} | {r['lateral_fwhm']:.4g} | "
                     f"{r['profiles']} | {r['spectral_extent_ratio']:.3f} |")
    lines += [line for label, r in rows.items() if r["isotropy_note"]
              for line in ("", unmeasured_sentence(f"the {_ROW_NAMES.get(label, label)}", r["isotropy_note"]))]
    lines += ["", f"{ISOTROPY_RATIO_MEANING[0].upper()}{ISOTROPY_RATIO_MEANING[1:]}; {SPECTRAL_RATIO_MEANING}. "
              "No ground truth is involved: these say how isotropic the output is, not whether it is right; use "
              "`zaug evaluate` for that."]
    if INTERPOLATED in rows:
        lines += ["", f"Row `{INTERPOLATED}`: the {_ROW_NAMES[INTERPOLATED]}, what interpolation alone reads on the "
                     "output's grid (a finer grid finds other structures); an output that restores along z reads "
                     "nearer 1 than it."]
    detail = {label: r["new_plane_detail"] for label, r in rows.items() if r.get("new_plane_detail") is not None}
    if detail:
        lines += ["", "Fine detail of the new planes relative to the acquired planes beside them (mean in-plane "
                  "Laplacian magnitude, noise included; 1 = alike): "
                  + ", ".join(f"{_ROW_NAMES.get(k, k)} {v:.2f}" for k, v in detail.items())
                  + ". Interpolating between two noisy planes averages some of their noise away, so it reads "
                  "below 1 too."]
    lines.append("")
    lines += [line for w in said for line in (f"**Warning:** {w}", "")]
    lines += ["## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figures]
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


INTERPOLATED = "interpolated"  # the prediction report's row of the input linearly interpolated to the output's planes
_ROW_NAMES = {INTERPOLATED: "input linearly interpolated onto the output's planes"}


def _report_stacks(before, after, index: tuple[int, ...]) -> list[tuple[str, Volume, Volume]]:
    """The stacks at ``index`` of input and output (float32), and the input linearly interpolated onto the output's
    planes: each as measured (on even planes) and on its own planes.

    The interpolated row is left out when the output has the input's planes,
    or planes outside the input's z range (nothing to interpolate from).
    """
    def first(vol, at=index) -> Volume:  # keeps the unit for the figure axes
        stack = np.asarray(vol.data[at], dtype=np.float32)
        return even_planes(Volume(stack, vol.voxel_size, vol.unit, z_positions=vol.z_positions), "linear")

    rows = [("input", first(before), before), ("output", first(after), after)]
    z_in, z_out = before.z_coords(), after.z_coords()
    tol = position_tolerance(z_in)
    same = len(z_in) == len(z_out) and np.allclose(z_in, z_out, rtol=0, atol=tol)
    if not same and z_out[0] >= z_in[0] - tol and z_out[-1] <= z_in[-1] + tol and len(z_in) > 1:
        stack = np.asarray(before.data[index], dtype=np.float32)
        linear = Volume(interpolate_stack(stack, z_in, z_out, "linear"), after.voxel_size, after.unit,
                        z_positions=after.z_positions, z_origin=after.z_origin)
        rows.append((INTERPOLATED, first(linear, ()), linear))
    return rows


def even_planes(volume: Volume, mode: str = "nearest", most: int = 4) -> Volume:
    """``volume`` itself when its planes are evenly spaced, else resampled along z onto even planes.

    Widths along z and xz views assume one z step: on uneven planes they read
    a gap of 0.25 and one of 1 as alike. The even step is the smallest gap,
    or coarser where that would give more than ``most`` times the planes.
    ``mode`` 'nearest' shows the planes as acquired (figures), 'linear' is
    what the measurements take.
    """
    if volume.is_uniform:
        return volume
    z = volume.z_coords()
    step = max(float(np.diff(z).min()), float(z[-1] - z[0]) / (most * volume.nz))
    grid = z[0] + step * np.arange(int(np.floor((z[-1] - z[0]) / step + 1e-6)) + 1)
    data = interpolate_stack(np.asarray(volume.data, np.float32), z, grid, mode)
    return Volume(data, (step,) + volume.voxel_size[1:], volume.unit, z_origin=float(z[0]))


def _about_stacks(before, after, index: tuple[int, ...]) -> list[str]:
    """What the prediction report measured, where that is not simply the whole stacks."""
    notes = []
    times = before.data.shape[before.axes.index("T")] if "T" in before.axes else 1
    extra = [f"{n} {name}" for n, name in ((before.n_channels, "channels"), (times, "time points")) if n > 1]
    if extra:
        notes.append(f"Measured on {before.stack_name(index)} only, the clearest (structures highest above the "
                     f"noise; the input has {' and '.join(extra)}).")
    region = before.metadata.get("region")
    if region:
        notes.append("The input is the box of planes {}:{}, rows {}:{} and columns {}:{} (--crop) of the file."
                     .format(*(i for pair in region for i in pair)))
    crop = before.metadata.get("crop")
    if crop:
        notes.append(f"Measured on the central {crop[2]} x {crop[2]} pixel window (rows from {crop[0]}, columns from "
                     f"{crop[1]})" + (f" and planes {crop[3]} to {crop[4] - 1}" if len(crop) > 3 else "")
                     + " of the input, and the same region of the output: a tiled prediction's stacks may not fit "
                     "in memory.")
    uneven = [name for name, vol in (("input", before), ("output", after)) if not vol.is_uniform]
    if uneven:
        notes.append(f"The {' and '.join(uneven)} planes are unevenly spaced: widths along z and the xz views are "
                     "taken on the planes resampled onto even ones (linearly for the measurements, nearest plane "
                     "for the views).")
    if after.metadata.get("noise_matched"):
        notes.append("The new planes were given noise to match the acquired planes beside them (--match-noise): "
                     "their fine detail below is that noise, not structure.")
    if before.unit == "pixel":
        notes.append("The voxel size is unknown (pixels): the isotropy ratio takes a z step as long as a pixel, "
                     "so it says little; give the real one with --voxel-size Z Y X.")
    return notes


def model_lines(model) -> list[str]:
    """Sentences on a learned model's training (steps, held-out self-check, mode), or none for a classical method."""
    config = getattr(model, "config", None)
    summary = getattr(model, "training_summary", None)
    if config is None or not summary:
        return []
    preset = getattr(config, "preset", None)
    name = getattr(config, "method", None) or getattr(model, "name", type(model).__name__)
    line = f"Model: {name}" + (f", `{preset}` preset" if preset else "")
    steps = summary.get("steps")
    if steps is not None:
        line += f", trained {steps} steps" + (f" ({summary['seconds']:.0f} s)" if summary.get("seconds") else "")
    gain = summary.get("self_check_gain_db")
    line += (f"; self-check on planes held out of its training stack: {gain:+.2f} dB over the best interpolation"
             if gain is not None else "; no self-check (no held-out planes)")
    check = getattr(config, "self_check", None) or {}
    if gain is not None and "gain_over_smoothing_db" in check:
        line += (f", {check['gain_over_smoothing_db']:+.2f} dB over interpolation followed by the best in-plane "
                 f"smoothing, sharpness {check['model']['sharpness']:.2f} (1 = as sharp as the real planes)")
        if check.get("planes", 3) < 3:
            line += f", on {check['planes']} plane{'s' * (check['planes'] != 1)} only: too few to go by"
    if hasattr(model, "resolved_mode"):
        line += ("; used between the acquired planes ('direct' mode)" if model.resolved_mode() == "direct"
                 else "; used at its training gap only ('transfer' mode)")
    return [line + "."]


def sharpened_noise(rows: dict, unit: str = "", shrink: float = 0.75) -> str | None:
    """A warning when the output's thin structures are much narrower across than the input's, else None.

    Restoring along z leaves the lateral resolution as it was, so a median
    lateral FWHM below ``shrink`` times the input's (linearly interpolated onto
    the output's planes where ``rows`` has that row: the same grid finds the
    same kind of structures) means that the narrowest
    structures of the output are new ones: on noisy stacks, noise sharpened
    into grains, which also lowers the isotropy ratio (Self-Net's default on
    the chromosomes stack: 0.12 against 0.26 um, from 426 structures against 78).

    >>> sharpened_noise({"input": {"lateral_fwhm": 0.26, "profiles": 78},
    ...                  "output": {"lateral_fwhm": 0.25, "profiles": 190}}) is None
    True
    """
    label = INTERPOLATED if INTERPOLATED in rows else "input"
    before, after = rows[label], rows["output"]
    if not (before["lateral_fwhm"] > 0 and after["lateral_fwhm"] < shrink * before["lateral_fwhm"]):
        return None
    where = "in the input" if label == "input" else "in the input linearly interpolated onto the same planes"
    return (f"the output's thin structures are {after['lateral_fwhm']:.3g} {unit} wide across against "
            f"{before['lateral_fwhm']:.3g} {unit} {where} ({after['profiles']} structures against "
            f"{before['profiles']}); a restoration along z cannot narrow them, so these are new structures, "
            "likely noise sharpened into grains. Look at the xz views before trusting the isotropy ratio.")


def new_plane_detail(volume, z_acquired: np.ndarray) -> float | None:
    """Mean in-plane |Laplacian| of the planes of ``volume`` that are new over that of those at ``z_acquired``.

    A model that removes noise gives new planes far smoother than the noisy
    acquired ones: bands in an xz view, and a threshold that segments the
    two kinds of plane differently. None when either kind is missing.
    """
    from .predict import acquired_planes

    acquired = acquired_planes(np.sort(z_acquired), volume.z_coords())[1]
    if acquired.all() or not acquired.any():
        return None
    stack = next(volume.stacks())[1]
    detail = np.array([np.abs(ndimage.laplace(np.asarray(p, np.float32))).mean() for p in stack])
    base = float(detail[acquired].mean())
    return float(detail[~acquired].mean() / base) if base > 0 else None


def smooth_new_planes(rows: dict, factor: float = 0.6) -> str | None:
    """A warning when the output's new planes carry much less fine detail than interpolation's would."""
    out = rows.get("output", {}).get("new_plane_detail")
    ref = rows.get(INTERPOLATED, {}).get("new_plane_detail")
    if out is None or ref is None or not out < factor * ref:
        return None
    return (f"the new planes carry much less fine detail than the acquired planes beside them ({out:.2f} of it; "
            f"linear interpolation {ref:.2f}): the method removes the noise the acquired planes keep, so an xz "
            "view shows bands and a threshold segments new and acquired planes differently. Fine for looking at "
            "structures; for measurements that threshold or count voxels, compare with `zaug predict cubic`.")


def widened_across(rows: dict, unit: str = "", grow: float = 1.15) -> str | None:
    """A warning when the output's thin structures are much wider across than interpolation's on the same planes."""
    ref, out = rows.get(INTERPOLATED), rows["output"]
    if ref is None or not (ref["lateral_fwhm"] > 0 and out["lateral_fwhm"] > grow * ref["lateral_fwhm"]):
        return None
    return (f"the output's thin structures are {out['lateral_fwhm']:.3g} {unit} wide across against "
            f"{ref['lateral_fwhm']:.3g} {unit} in the input interpolated onto the same planes: the output (its new "
            "planes) is smoothed in-plane, which lowers the isotropy ratio without adding resolution along z; "
            "compare the axial widths.")


def _before_after_xz(before, after, index: tuple[int, ...], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), squeeze=False)
    for ax, (label, vol) in zip(axes[0], (("input", before), ("output", after))):
        stack = np.asarray(vol.data[index], dtype=np.float32)
        lo, hi = np.percentile(stack, (0.1, 99.9))
        even = even_planes(Volume(stack, vol.voxel_size, vol.unit, z_positions=vol.z_positions))
        section = even.data[:, stack.shape[1] // 2, :]
        ax.imshow(section, cmap="gray", vmin=lo, vmax=hi, aspect=even.voxel_size[0] / even.voxel_size[2],
                  interpolation="nearest")
        step = (f"{vol.voxel_size[0]:.3g} {vol.unit} z step" if vol.is_uniform
                else f"uneven planes, shown on a {even.voxel_size[0]:.3g} {vol.unit} grid")
        ax.set_title(f"{label}: xz section ({step}; own contrast)", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path, plt)


@_staged
def write_oblique_report(result: dict, out_dir: str | Path, overwrite: bool = False) -> Path:
    """``report.md``, ``results.json`` and z-y / x-y sections for an oblique restoration evaluation.

    ``result`` must come from ``evaluate_oblique(..., keep_predictions=True)``
    for the figures; the table is written regardless.
    An existing report in ``out_dir`` is replaced only with ``overwrite``
    (:func:`check_report_folder`).
    """
    from .evaluate_oblique import format_oblique_table

    out = report_folder(out_dir, "oblique", result["methods"], overwrite)
    arrays = result.get("arrays", {})
    figures = []
    if arrays:
        panels = [("original", arrays["truth"]), ("blurred input", arrays["blurred"])]
        panels += [(name, arrays[name]) for name in result["methods"] if name in arrays and name != "input"]
        figures.append(_sections(panels, "zy", out / "zy_sections.png", result["axial_angle"]))
        figures.append(_sections(panels, "xy", out / "xy_planes.png", result["axial_angle"]))
    plain = {k: v for k, v in result.items() if k != "arrays"}
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json_text(plain), encoding="utf-8")
    ref = result["reference"]
    lines = [f"# zaug oblique restoration evaluation, axial direction at {result['axial_angle']:g} degrees", "",
             f"Input: `{result['input']}`, shape {result['shape']}, voxel size "
             f"{', '.join(f'{v:g}' for v in result['voxel_size'])} {result['unit']} (z, y, x); line blur sigma "
             f"{result['sigma']:g} voxels.", "", "## Conventions", ""]
    lines += [f"- {c}" for c in result["conventions"]]
    fid = "fid" in result
    lines += ["", "## Results", "", "| method | PSNR dB | SSIM | CF-PSNR low | mid | sharpness | gradient ratio |"
              + (distance_columns(markdown=True) if fid else ""),
              "|---|---|---|---|---|---|---|" + ("---|---|" if fid else ""),
              f"| original (reference) | | | | | | {ref['original']['directional_gradient_ratio']:.3f} |"
              + (distance_columns({}, markdown=True) if fid else "")]
    for name, r in result["methods"].items():
        cf = r["cf_psnr"]
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {cf['low']:.2f} | {cf['mid']:.2f} | "
                     f"{r['sharpness']:.3f} | {r['directional_gradient_ratio']:.3f} |"
                     + (distance_columns(r, markdown=True) if fid else ""))
    lines += ["", "## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figures]
    lines += ["", "```", format_oblique_table(result), "```", ""]
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return report


def _sections(panels: list, view: str, path: Path, angle: float) -> Path:
    """One row of z-y sections (middle x) or x-y planes (middle z), same grey scale."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 3.2), squeeze=False)
    for col, (title, stack) in enumerate(panels):
        image = stack[:, :, stack.shape[2] // 2] if view == "zy" else stack[stack.shape[0] // 2]
        axes[0, col].imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[0, col].set_title(title, fontsize=8)
        axes[0, col].set_xticks([])
        axes[0, col].set_yticks([])
    label = f"z-y section (axial at {angle:g} deg)" if view == "zy" else "x-y plane"
    axes[0, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)
