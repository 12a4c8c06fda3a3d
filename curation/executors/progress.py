"""Progress of a run: rows done of total, percent, rate and ETA on stderr.

`Progress` prints a line every few seconds (logs, the Ray driver); `Bar` draws
the same counts as a bar (the local executor); `quiet` counts without printing.
All of them measure the steady rate from the first row on, leaving out startup
(model loads), which is what the run summary reports as steady_rows_per_s.
"""
from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Prints `label: done/total rows (pct), rate rows/s, ETA h:mm:ss` every few seconds."""

    def __init__(self, label: str, total: int | None, already: int = 0,
                 every_s: float = 5.0, stream: Any = None):
        """Args:
            label: what runs, e.g. "score (ray)".
            total: rows of the whole input (None: unknown).
            already: rows finished by earlier runs (counted as done).
            every_s: seconds between lines; 0 never prints.
            stream: where lines go (default stderr).
        """
        self.label, self.total, self.done = label, total, already
        self.new, self.every_s, self.status = 0, every_s, ""
        self.stream = stream or sys.stderr
        self.t0 = self._last = time.monotonic()
        self.t_first: float | None = None  # first row: rates leave out startup (model loads)

    def tick(self, n: int) -> None:
        """Count n more rows; print when `every_s` has passed."""
        self.done += n
        if self.t_first is None:
            self.t_first = time.monotonic()
        else:
            self.new += n
        if self.every_s and time.monotonic() - self._last >= self.every_s:
            self.show()

    def note(self, text: str) -> None:
        """A short status shown with the next line (e.g. the beam-search round)."""
        self.status = text

    @property
    def rate(self) -> float:
        """Rows per second in this run since its first row arrived."""
        if self.t_first is None:
            return 0.0
        return self.new / max(time.monotonic() - self.t_first, 1e-9)

    def show(self) -> None:
        """Print one progress line now."""
        self._last = time.monotonic()
        if not self.every_s:
            return
        rate = self.rate
        line = f"{self.label}: {self.done}"
        if self.total:
            line += f"/{self.total} rows ({100.0 * self.done / self.total:.1f}%)"
            if rate > 0:
                line += f", {rate:.1f} rows/s, ETA {_clock(max(self.total - self.done, 0) / rate)}"
        else:
            line += f" rows, {rate:.1f} rows/s"
        if self.status:
            line += f" [{self.status}]"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """The last line (or the bar's end)."""
        self.show()


class Bar(Progress):
    """The same counts as a tqdm bar on stderr: done/total, percent, rate, ETA."""

    def __init__(self, label: str, total: int | None, already: int = 0):
        from tqdm import tqdm

        super().__init__(label, total, already, every_s=0)
        self.bar = tqdm(total=total, initial=already, unit="row", desc=label, leave=False,
                        file=sys.stderr, dynamic_ncols=True)

    def tick(self, n: int) -> None:
        super().tick(n)
        self.bar.update(n)

    def note(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def close(self) -> None:
        self.bar.close()


def quiet(label: str, total: int | None, already: int = 0) -> Progress:
    """A Progress that counts (for the rates) and prints nothing."""
    return Progress(label, total, already, every_s=0)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
