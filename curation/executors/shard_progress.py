"""Progress of a run: rows done of total, rate and ETA, printed every few seconds."""
from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Prints `label: done/total rows (pct) rate rows/s ETA` every few seconds."""

    def __init__(self, label: str, total: int | None, already: int = 0,
                 every_s: float = 5.0, stream: Any = None):
        self.label, self.total, self.done = label, total, already
        self.new, self.every_s = 0, every_s
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
        if time.monotonic() - self._last >= self.every_s:
            self.show()

    @property
    def rate(self) -> float:
        """Rows per second in this run since its first row arrived."""
        if self.t_first is None:
            return 0.0
        return self.new / max(time.monotonic() - self.t_first, 1e-9)

    def show(self) -> None:
        """Print one progress line now."""
        self._last = time.monotonic()
        rate = self.rate
        line = f"{self.label}: {self.done}"
        if self.total:
            pct = 100.0 * self.done / self.total
            line += f"/{self.total} rows ({pct:.1f}%)"
            if rate > 0:
                eta = int(max(self.total - self.done, 0) / rate)
                line += f", {rate:.1f} rows/s, ETA {eta // 3600}:{eta % 3600 // 60:02d}:{eta % 60:02d}"
        else:
            line += f" rows, {rate:.1f} rows/s"
        print(line, file=self.stream, flush=True)
