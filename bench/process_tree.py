"""CPU seconds and memory of a process and every descendant, sampled from /proc.

A sampler thread reads, every `every_s`, each live process of the tree: its CPU time
(utime + stime, all threads) and resident memory. A process's CPU counts from `mark()`
(processes started later count from their start); `peak_rss_mb` is the highest sum of the
tree's resident memory seen at one sample.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> list[int]:
    """`root` and every process below it, parents first; gone processes are left out."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                queue += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_and_rss(pid: int) -> tuple[float, float] | None:
    """(CPU seconds so far, resident MB) of one process, None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return cpu, rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def tree_usage(root: int) -> tuple[float, float]:
    """(CPU seconds so far, resident MB) summed over `root` and its live descendants."""
    cpu = rss = 0.0
    for pid in descendants(root):
        got = cpu_and_rss(pid)
        if got is not None:
            cpu, rss = cpu + got[0], rss + got[1]
    return cpu, rss


class TreeSampler:
    """Samples the tree under `root` in a thread until `stop()`: `cpu_s`, `peak_rss_mb`."""

    def __init__(self, root: int, every_s: float = 0.25) -> None:
        self.root, self.every_s = root, every_s
        self.last_cpu: dict[int, float] = {}
        self.cpu_at_mark: dict[int, float] = {}
        self.peak_rss_mb = 0.0
        self.marked = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        total_rss = 0.0
        with self._lock:
            for pid in descendants(self.root):
                got = cpu_and_rss(pid)
                if got is None:
                    continue
                self.last_cpu[pid], rss = got
                total_rss += rss
            self.peak_rss_mb = max(self.peak_rss_mb, total_rss)

    def mark(self) -> None:
        """Count CPU from now on: what each live process used so far is left out."""
        self.sample()
        with self._lock:
            self.cpu_at_mark = dict(self.last_cpu)
            self.marked = True

    @property
    def cpu_s(self) -> float:
        with self._lock:
            return sum(cpu - self.cpu_at_mark.get(pid, 0.0) for pid, cpu in self.last_cpu.items())

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()


def run_measured(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800.0
                 ) -> dict[str, object]:  # fmt: skip
    """Run a measuring program; returns its `BENCH result {json}` with `cpu_s`, `peak_rss_mb`.

    The program prints `BENCH start` when its clock starts (CPU counts from there) and
    `BENCH result <one JSON object>` when it stops. Raises RuntimeError if it prints no
    result (the last lines of its output say why).
    """
    import json
    import subprocess

    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    sampler = TreeSampler(proc.pid).start()
    result: dict[str, object] | None = None
    tail: list[str] = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-40:], line]
            if line.startswith("BENCH start"):
                sampler.mark()
            elif line.startswith("BENCH result "):
                sampler.sample()
                result = json.loads(line.removeprefix("BENCH result "))
                result |= {"cpu_s": round(sampler.cpu_s, 1),
                           "peak_rss_mb": round(sampler.peak_rss_mb)}  # fmt: skip
        proc.wait()
    finally:
        timer.cancel()
        sampler.stop()
        if proc.poll() is None:
            proc.kill()
    if result is None:
        msg = f"{argv[:3]} exited {proc.returncode} without a result:\n{''.join(tail)}"
        raise RuntimeError(msg)
    return result
