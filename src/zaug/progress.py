"""Progress of long work (prediction, restoration), shown only where a caller asks for it.

A library call shows nothing. ``zaug predict`` and napari wrap the work in
:func:`reporting`; the loops that take the time declare how much work they
are about to do with :func:`part` and report it done with :func:`advance`.
Parts nest: a part counts as ``weight`` units of the part around it, so the
bar moves through the whole job once, whatever the number of channels, time
points, passes and batches. Setting the ``stop`` event given to
:func:`reporting` makes the next report raise :class:`Cancelled` (napari's
worker uses it: nothing is written for a cancelled job).

>>> from zaug.progress import part, advance
>>> with part(3):      # nobody reporting: free, and nothing is shown
...     advance()
"""

from __future__ import annotations

import contextlib
import sys
import threading
from contextvars import ContextVar

from .errors import ZaugError

#: Bar positions over the whole job (tqdm shows them as a percentage).
RESOLUTION = 1000


def redraw_seconds() -> float:
    """Seconds between redraws of a bar on stderr: often on a terminal, seldom into a log.

    Into a log file (a cluster job, a pipe) a bar redrawn ten times a second
    writes megabytes.
    """
    return 0.1 if sys.stderr.isatty() else 10.0


class Cancelled(ZaugError):
    """The job was stopped from outside (the ``stop`` event of :func:`reporting`); nothing was written."""


class _Level:
    """A part: where it starts in the whole job, how much of it it covers, its units, the units done."""

    __slots__ = ("start", "span", "total", "done")

    def __init__(self, start: float, span: float, total: float):
        self.start, self.span, self.total, self.done = start, span, max(float(total), 1e-12), 0.0

    def at(self) -> float:
        return self.start + self.span * min(self.done, self.total) / self.total


class _Reporter:
    def __init__(self, bar, stop: threading.Event | None):
        self.bar, self.stop = bar, stop
        self.levels = [_Level(0.0, 1.0, 1.0)]

    def check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Cancelled("stopped before the end; nothing was written.")

    def show(self) -> None:
        position = min(RESOLUTION, int(RESOLUTION * self.levels[-1].at()))
        if position > self.bar.n:  # only forward
            self.bar.update(position - self.bar.n)
        self.check()


_REPORTER: ContextVar[_Reporter | None] = ContextVar("zaug_progress", default=None)


@contextlib.contextmanager
def reporting(bar=None, desc: str = "predicting", stop: threading.Event | None = None):
    """Show the progress of the work done inside the ``with`` block.

    Parameters
    ----------
    bar : tqdm class, optional
        The bar to use (tqdm's on stderr by default; napari's ``progress`` for
        its activity panel).
    desc : str
        The bar's label.
    stop : threading.Event, optional
        Set from another thread, it stops the work at its next report with
        :class:`Cancelled`.
    """
    options = {}
    if bar is None:
        from tqdm.auto import tqdm as bar
        options = {"file": sys.stderr, "mininterval": redraw_seconds()}
    shown = bar(total=RESOLUTION, desc=desc, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
                **options)
    reporter = _Reporter(shown, stop)
    token = _REPORTER.set(reporter)
    try:
        reporter.check()
        yield
        reporter.levels[0].done = 1.0
        reporter.show()
    finally:
        _REPORTER.reset(token)
        shown.close()


@contextlib.contextmanager
def part(total: float, weight: float = 1.0):
    """Declare ``total`` units of work in the ``with`` block, worth ``weight`` units of the enclosing part.

    Reported with :func:`advance`; when the block ends, the enclosing part has
    advanced by ``weight``. Without :func:`reporting` around it, nothing happens.
    """
    reporter = _REPORTER.get()
    if reporter is None:
        yield
        return
    parent = reporter.levels[-1]
    start = parent.at()
    span = min(parent.span * weight / parent.total, parent.start + parent.span - start)
    reporter.levels.append(_Level(start, max(span, 0.0), total))
    try:
        yield
    finally:
        reporter.levels.pop()
    parent.done += weight
    reporter.show()


def advance(units: float = 1.0) -> None:
    """Report ``units`` of the innermost :func:`part` done (and stop here if asked to)."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter.levels[-1].done += units
        reporter.show()


@contextlib.contextmanager
def dask_tasks_bar(desc: str = "computing tiles", delay: float = 1.0):
    """A tqdm bar on stderr over the tasks of every dask computation in the ``with`` block.

    Not dask's own ``ProgressBar``: its drawing thread sleeps between redraws
    and is joined at the end of each computation, so a redraw interval fit for
    a log file (10 s) added up to 10 s to every computation. Shown once a
    computation has taken ``delay`` seconds.
    """
    from dask.callbacks import Callback
    from tqdm.auto import tqdm

    class _Bar(Callback):
        shown = None

        def _start_state(self, dsk, state):
            tasks = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
            self.shown = tqdm(total=tasks, desc=desc, unit="task", file=sys.stderr,
                              mininterval=redraw_seconds(), delay=delay)

        def _posttask(self, key, result, dsk, state, worker_id):
            self.shown.update(1)

        def _finish(self, dsk, state, errored):
            if self.shown is not None:
                if self.shown.format_dict["elapsed"] >= delay:  # a log gets the last state too
                    self.shown.refresh()
                self.shown.close()
                self.shown = None

    with _Bar():
        yield
