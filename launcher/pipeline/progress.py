"""A running pipeline step's progress, read from the step's log file as it grows.

A step's command writes its own progress into its log: tqdm bars (evaluation,
HF Trainer), curation's `label: done/total rows (pct), rate, ETA` lines.
StepProgress keeps the latest such reading and shows it under the step's
label, e.g. `[3/14] align  train  45% |#########...........| 9/20 ETA 00:12`:
redrawn in place on a terminal, printed as a line now and then elsewhere (CI,
pipes), where a redraw would be one line per update.
"""
from __future__ import annotations

import codecs
import re
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional, TextIO

PRINT_EVERY_S = 30.0  # off a terminal: at most one progress line per step this often
BAR = 20
# tqdm's default format: `desc: 45%|####      | 45/100 [00:10<00:12, 4.50it/s]`
_TQDM = re.compile(r"(?:(?P<desc>[^|\r\n]*?):\s*)?\d{1,3}%\|[^|\r\n]*\|\s*(?P<n>\d+)/(?P<total>\d+)"
                   r"\s*\[[^<\]\r\n]*<(?P<eta>[^,\]\r\n]*)")
# curation's shard progress: `curate: 12/24 rows (50.0%), 1.2 rows/s, ETA 0:00:10`
_ROWS = re.compile(r"(?P<desc>[^:\r\n]{1,40}): (?P<n>\d+)/(?P<total>\d+) rows \([\d.]+%\)"
                   r"(?:, [\d.]+ rows/s, ETA (?P<eta>[\d:]+))?")


@dataclass(frozen=True)
class Reading:
    """One progress reading: `n` of `total` done, and the command's own ETA if it gave one."""

    desc: str
    n: int
    total: int
    eta: Optional[str] = None

    @property
    def fraction(self) -> float:
        """Done over total, within [0, 1]."""
        return min(max(self.n / self.total, 0.0), 1.0) if self.total else 0.0


def parse(segment: str) -> Reading | None:
    """The progress reading in one line (or one carriage-return segment) of a log, if any."""
    for pattern in (_TQDM, _ROWS):
        m = pattern.search(segment)
        if m and int(m["total"]) > 0:
            eta = (m["eta"] or "").strip()
            return Reading((m["desc"] or "").strip(), int(m["n"]), int(m["total"]),
                           eta if eta and eta != "?" else None)
    return None


def format_eta(seconds: float) -> str:
    """`M:SS`, or `H:MM:SS` from an hour on."""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class StepProgress:
    """Shows the latest progress reading of a step's output under the step's label.

    Args:
        label: the step's label, e.g. `[3/14] align`.
        stream: where to show it (default: stdout).
        every_s: off a terminal, the least time between two printed lines.
        tty: redraw in place; default: whether the stream is a terminal.
    """

    def __init__(self, label: str, stream: TextIO | None = None, every_s: float = PRINT_EVERY_S,
                 tty: bool | None = None):
        self.label, self.every_s = label, every_s
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""  # the unfinished last segment
        self.reading: Reading | None = None
        self._shown: Reading | None = None
        self._last_print = float("-inf")
        self._drawn = False
        self._start: tuple[float, int] | None = None  # (time, n) of the first reading, for an own ETA

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the log; show the latest reading when it is time."""
        text = self._tail + self._decoder.decode(data)
        segments = re.split(r"[\r\n]", text)
        self._tail = segments[-1]
        # tqdm ends a bar with the next \r, not a newline: the unfinished tail may hold the latest one
        for segment in reversed(segments):
            reading = parse(segment)
            if reading:
                self._take(reading)
                break
        self.show()

    def _take(self, reading: Reading) -> None:
        if self.reading is None or reading.desc != self.reading.desc or reading.total != self.reading.total:
            self._start = (time.monotonic(), reading.n)  # a new bar: its own rate
        self.reading = reading

    def eta(self) -> str:
        """The command's own ETA, else one from the rate seen here, else `?`."""
        r = self.reading
        if r is None:
            return "?"
        if r.eta:
            return r.eta
        if self._start and r.n > self._start[1]:
            rate = (r.n - self._start[1]) / max(time.monotonic() - self._start[0], 1e-9)
            return format_eta((r.total - r.n) / rate)
        return "?"

    def line(self) -> str:
        """`LABEL  DESC  45% |#########...........| 9/20 ETA 0:12` of the latest reading."""
        r = self.reading
        if r is None:
            return self.label
        filled = int(round(BAR * r.fraction))
        desc = f"{r.desc}  " if r.desc else ""
        return (f"{self.label}  {desc}{100 * r.fraction:3.0f}% |{'#' * filled}{'.' * (BAR - filled)}| "
                f"{r.n}/{r.total} ETA {self.eta()}")

    def show(self, force: bool = False) -> None:
        """Redraw (terminal) or print a line if the reading changed and `every_s` has passed."""
        if self.reading is None or self.reading == self._shown:
            return
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + self.line()[:width] + "\x1b[K")
            self._drawn = True
        elif force or time.monotonic() - self._last_print >= self.every_s:
            self.stream.write(self.line() + "\n")
            self._last_print = time.monotonic()
        else:
            return
        self._shown = self.reading
        self.stream.flush()

    def close(self) -> None:
        """Show the last reading (off a terminal) or clear the redrawn line (on one)."""
        if self.tty:
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
        else:
            self.show(force=True)

    def __enter__(self) -> "StepProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
