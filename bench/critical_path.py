"""The critical path of a finished Snakemake run, read from its log: which jobs set the wall time, and how long.

Snakemake logs every job with a timestamp, its rule, wildcards, inputs and outputs, and a timestamped
"Finished jobid" line. A job depends on the jobs whose outputs are among its inputs. Walking back from the
job that finished last, each step goes to the dependency that finished last: that chain is the critical
path. Where a job started later than its last dependency finished, it waited for a free core (the gap is
shown), so the path's job time plus its waits is the run's wall time.

    python bench/critical_path.py /path/to/snakemake.log
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]$")
RULE = re.compile(r"^(?:local)?(?:checkpoint|rule) (\w+):$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")


@dataclass
class Job:
    jobid: int
    rule: str
    wildcards: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds() if self.start and self.end else 0.0

    @property
    def name(self) -> str:
        return f"{self.rule}[{self.wildcards}]" if self.wildcards else self.rule


def _stamp(text: str) -> datetime:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def parse_log(text: str) -> dict[int, Job]:
    """Every job of the log with its start and end time, inputs and outputs."""
    jobs: dict[int, Job] = {}
    stamp: datetime | None = None
    current: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if match := STAMP.match(line):
            stamp, current = _stamp(match.group(1)), None
        elif (match := RULE.match(line)) and stamp is not None:
            current = {"rule": match.group(1), "start": stamp}
        elif current is not None and ":" in line:
            key, _, value = line.partition(":")
            value = value.strip()
            if key in ("input", "output"):
                current[key] = [item.strip() for item in value.split(",") if item.strip()]
            elif key == "wildcards":
                current["wildcards"] = value
            elif key == "jobid":
                jobid = int(value)
                jobs[jobid] = Job(jobid, current["rule"], start=current["start"])
                current["job"] = jobs[jobid]
            job = current.get("job")
            if job is not None:
                job.inputs, job.outputs = current.get("input", []), current.get("output", [])
                job.wildcards = current.get("wildcards", "")
        elif (match := FINISHED.match(line)) and stamp is not None and int(match.group(1)) in jobs:
            jobs[int(match.group(1))].end = stamp
    return jobs


def critical_path(jobs: dict[int, Job]) -> list[tuple[Job, float]]:
    """(job, seconds it waited for a core after its last dependency) along the critical path, first job first."""
    finished = [job for job in jobs.values() if job.end is not None]
    if not finished:
        return []
    producers = {path: job for job in finished for path in job.outputs}
    path: list[tuple[Job, float]] = []
    job = max(finished, key=lambda j: (j.end, j.jobid))
    while job is not None:
        deps = {producers[p].jobid: producers[p] for p in job.inputs if p in producers and producers[p] is not job}
        last = max(deps.values(), key=lambda j: j.end) if deps else None
        wait = (job.start - last.end).total_seconds() if last is not None else 0.0
        path.append((job, max(wait, 0.0)))
        job = last
    return path[::-1]


def longest_chain(jobs: dict[int, Job]) -> tuple[float, list[Job]]:
    """The dependency chain with the most job time (the wall time with unlimited cores)."""
    finished = {job.jobid: job for job in jobs.values() if job.end is not None}
    producers = {path: job for job in finished.values() for path in job.outputs}
    best: dict[int, tuple[float, list[Job]]] = {}

    def chain(job: Job) -> tuple[float, list[Job]]:
        if job.jobid not in best:
            deps = [producers[p] for p in job.inputs if p in producers and producers[p] is not job]
            prior = max((chain(dep) for dep in deps), key=lambda c: c[0], default=(0.0, []))
            best[job.jobid] = (prior[0] + job.seconds, prior[1] + [job])
        return best[job.jobid]

    return max((chain(job) for job in finished.values()), key=lambda c: c[0], default=(0.0, []))


def describe(jobs: dict[int, Job], cores: int | None = None) -> str:
    path = critical_path(jobs)
    if not path:
        return "critical path: no finished jobs in the log"
    starts = [j.start for j in jobs.values() if j.start]
    wall = (max(j.end for j in jobs.values() if j.end) - min(starts)).total_seconds()
    busy = sum(job.seconds for job in jobs.values())
    lines = [f"critical path ({sum(j.seconds for j, _ in path):.0f} s of jobs + "
             f"{sum(w for _, w in path):.0f} s waiting for a core, of {wall:.0f} s wall; all jobs together "
             f"{busy:.0f} s" + (f", {busy / cores:.0f} s per core" if cores else "") + "):"]
    for job, wait in path:
        offset = (job.start - min(starts)).total_seconds()
        lines.append(f"  {offset:6.0f} s  {job.name:<55} {job.seconds:6.0f} s"
                     + (f"  (waited {wait:.0f} s for a core)" if wait >= 1 else ""))
    seconds, chain = longest_chain(jobs)
    lines.append(f"longest dependency chain (the wall time with unlimited cores): {seconds:.0f} s: "
                 + " -> ".join(f"{j.name} {j.seconds:.0f} s" for j in chain))
    longest = sorted(jobs.values(), key=lambda j: -j.seconds)[:8]
    lines.append("longest jobs: " + ", ".join(f"{j.name} {j.seconds:.0f} s" for j in longest))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(describe(parse_log(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
