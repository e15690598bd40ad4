"""Progress of a long run: a tqdm bar on a terminal, a plain log line every few seconds elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO, final

from tqdm.auto import tqdm

__all__ = ["LOG_EVERY", "Progress"]

#: seconds between two plain log lines when stderr is not a terminal
LOG_EVERY = 10.0


@final
class Progress:
    """Counts steps and shows them in the way that suits where stderr goes.

    ``mode=True`` draws a tqdm bar; ``mode=None`` (the default of ``solve``,
    ``fit`` and the CLI) draws the bar when ``stream`` is a terminal and
    otherwise prints one plain line every ``every`` seconds (default :data:`LOG_EVERY`) (a log file or a
    batch job sees that the run is alive, and how far it got); ``mode=False``
    prints nothing. ``total=None`` counts without a bound (a solve that only its
    ``time_limit`` ends): the bar shows the count and rate, the line ``desc: step n``.

    Example:
        >>> import io
        >>> log = io.StringIO()
        >>> with Progress(10, mode=None, desc="demo", every=0.0, stream=log) as p:
        ...     p.update(5)
        ...     p.set_postfix(H="1.234")
        >>> log.getvalue().splitlines()[0]
        'demo: step 5/10 (50%)'
        >>> clock = io.StringIO()
        >>> with Progress(None, mode=None, desc="no budget", every=0.0, stream=clock) as p:
        ...     p.update(7)
        >>> clock.getvalue().splitlines()[0]
        'no budget: step 7'
    """

    def __init__(
        self,
        total: int | None,
        *,
        mode: bool | None = None,
        desc: str = "",
        initial: int = 0,
        every: float | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.bar = mode is True or (mode is None and isatty)
        self.lines = mode is None and not isatty
        self.total, self.n, self.desc = total, initial, desc
        self.every = LOG_EVERY if every is None else every
        self.postfix: dict[str, object] = {}
        self._start = self._last = time.monotonic()
        self._tqdm = tqdm(
            total=total, initial=initial, desc=desc, leave=False, file=self.stream, disable=not self.bar
        )

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps; a log line when ``every`` seconds passed since the last one."""
        self.n += n
        self._tqdm.update(n)
        if self.lines and time.monotonic() - self._last >= self.every:
            self.log()

    def set_postfix(self, **values: object) -> None:
        """Numbers shown after the count (the bar's postfix, or the end of the next log line)."""
        self.postfix = values
        self._tqdm.set_postfix(**values)

    def reset_to(self, n: int) -> None:
        """Set the count back (e.g. after a rollback)."""
        self.n = self._tqdm.n = n
        self._tqdm.refresh()

    def log(self) -> None:
        """Print the plain line now: ``desc: step n/total (p%) key=value ... [t s]``."""
        self._last = time.monotonic()
        if self.total is None:  # no step budget (the clock ends the run)
            count = f"step {self.n}"
        else:
            count = f"step {self.n}/{self.total} ({100 * self.n / self.total if self.total else 100.0:.0f}%)"
        extra = "".join(f" {k}={v}" for k, v in self.postfix.items())
        elapsed = self._last - self._start
        tail = f" [{elapsed:.0f} s]" if elapsed >= 1 else ""
        print(f"{self.desc}: {count}{extra}{tail}", file=self.stream, flush=True)

    def close(self) -> None:
        """Close the bar."""
        self._tqdm.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
