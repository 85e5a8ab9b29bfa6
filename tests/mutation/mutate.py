#!/usr/bin/env python3
"""The mutation campaign: applies each mutant of tests/mutation/mutants.txt to
the source, rebuilds incrementally, runs the unit, store-conformance and
simulation tests of the test command, and prints which test caught it.

  scripts/mutate.sh [--build DIR] [--only ID[,ID...]] [--list] [--markdown FILE]

A mutant is a one-line edit of a source file (see mutants.txt for the format).
The tool restores every file it touched, also when interrupted. It exits 0
when at least --min-rate percent (default 95) of the mutants were caught.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LIST = os.path.join(ROOT, "tests", "mutation", "mutants.txt")

# The test stages, cheapest first: a mutant is caught by the first stage with
# a failing test. Each is a ctest regular expression; the tests that expect a
# failure (the simulation's built-in mutants) are left out.
STAGES = {
    "unit": r"^(unit|threaded)/",
    "sim": r"^sim/(seeds_|sqlite_seeds)",
    "redis": r"^redis/",
    # parley-server's own mutants (src/server): its unit tests, the C API's
    # in-process server and the end-to-end tests, with one shard and with four.
    "server": r"^(server/unit|capi/c_test|e2e4?/(cluster|limits|webhook|slow_consumer|shutdown|shards|entries|server_api|groups|jwt))$",
}
# Per-test timeouts (s): a mutant that makes a loop endless is caught by them.
TIMEOUTS = {"unit": 60, "sim": 600, "redis": 120, "server": 240}


def stages_for(m, chosen):
    """The Redis tests come first for the Redis store's mutants, last for the rest;
    the server's and the C API's mutants run the server stage only (capi/c_test is there)."""
    if m.file.startswith(("src/server/", "capi/")):
        order = ["server"]
    else:
        order = ["unit", "redis", "sim"] if "redis" in m.file else ["unit", "sim", "redis"]
    return [name for name in order if name in chosen]


TARGETS = ["parley_unit_tests", "parley_threaded_tests", "parley_sim", "parley_redis_tests"]
SERVER_TARGETS = ["parley-server", "parley_capi_test", "parley_server_unit_tests"]


def targets_for(stages):
    return TARGETS + (SERVER_TARGETS if "server" in stages else [])


@dataclass
class Mutant:
    id: str
    file: str = ""
    breaks: str = ""
    find: str = ""
    replace: str = ""
    occurrence: int = 0  # 0: the find text must occur exactly once
    line: int = 0
    status: str = ""
    caught_by: list = field(default_factory=list)
    seconds: float = 0.0


def parse(path):
    mutants, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.match(r"^\[([a-z0-9_.]+)\]$", line)
            if m:
                cur = Mutant(m.group(1))
                mutants.append(cur)
                continue
            m = re.match(r"^(file|breaks|find|replace|occurrence)\s*=\s?(.*)$", line)
            if not m or cur is None:
                sys.exit(f"{path}:{n}: cannot read this line")
            key, value = m.groups()
            setattr(cur, key, int(value) if key == "occurrence" else value)
    ids = [m.id for m in mutants]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        sys.exit(f"{path}: ids given twice: {', '.join(sorted(dup))}")
    for m in mutants:
        if not (m.file and m.breaks and m.find):
            sys.exit(f"{path}: [{m.id}] needs file, breaks and find")
    return mutants


def locate(m, text):
    """The offset of the mutant's find text (its occurrence-th match)."""
    at = -1
    for _ in range(max(m.occurrence, 1)):
        at = text.find(m.find, at + 1)
        if at < 0:
            return -1
    if m.occurrence == 0 and text.find(m.find, at + 1) >= 0:
        raise ValueError(f"[{m.id}] the find text occurs more than once in {m.file}: give occurrence")
    return at


def check(mutants):
    bad = []
    for m in mutants:
        path = os.path.join(ROOT, m.file)
        try:
            text = open(path, encoding="utf-8").read()
            at = locate(m, text)
        except (OSError, ValueError) as e:
            bad.append(str(e))
            continue
        if at < 0:
            bad.append(f"[{m.id}] find text not in {m.file}: {m.find!r}")
        else:
            m.line = text.count("\n", 0, at) + 1
    if bad:
        sys.exit("mutants.txt is out of date with the source:\n  " + "\n  ".join(bad))


def run(cmd, log, timeout=None):
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        return subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode


def failed_tests(build, stage, log):
    """Runs one stage; returns the names of the tests that failed (empty: all passed)."""
    jobs = str(os.cpu_count() or 2)
    cmd = ["ctest", "--test-dir", build, "-j", jobs, "-R", STAGES[stage], "--stop-on-failure",
           "--timeout", str(TIMEOUTS[stage]), "-Q", "--output-log", log + ".ctest"]
    failed_log = os.path.join(build, "Testing", "Temporary", "LastTestsFailed.log")
    if os.path.exists(failed_log):
        os.remove(failed_log)  # ctest leaves the last one in place when every test passes
    if run(cmd, log) == 0:
        return []
    try:
        text = open(failed_log).read()
        failed = [ln.split(":", 1)[1] for ln in text.splitlines() if ":" in ln]
    except OSError:
        failed = []
    return failed or ["(ctest failed; see the log)"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-mutate"))
    ap.add_argument("--only", default="", help="comma-separated mutant ids")
    ap.add_argument("--list", action="store_true", help="check the list against the source and print it")
    ap.add_argument("--markdown", default="", help="also write the table to this file")
    ap.add_argument("--min-rate", type=float, default=95.0)
    ap.add_argument("--stages", default="unit,sim,redis,server",
                    help="which test stages to run (a quick look: --stages unit)")
    args = ap.parse_args()
    chosen = args.stages.split(",")
    if not chosen or set(chosen) - set(STAGES):
        sys.exit(f"--stages takes a list of {', '.join(STAGES)}")

    mutants = parse(LIST)
    check(mutants)
    if args.only:
        want = set(args.only.split(","))
        unknown = want - {m.id for m in mutants}
        if unknown:
            sys.exit(f"unknown mutants: {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.id in want]
    if args.list:
        for m in mutants:
            print(f"{m.id:34} {m.file}:{m.line}  {m.breaks}")
        print(f"{len(mutants)} mutants")
        return 0

    build = os.path.abspath(args.build)
    log = os.path.join(build, "mutate.log")
    os.makedirs(build, exist_ok=True)
    open(log, "w").close()
    print(f"== configure and build {build} (log: {log})", flush=True)
    cfg = ["cmake", "-S", ROOT, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
           "-DPARLEY_BUILD_TESTS=ON", "-DPARLEY_WITH_REDIS=ON", "-DPARLEY_BUILD_EXAMPLES=ON", "-DPARLEY_BUILD_SERVER=ON"]
    if run(cfg, log) != 0 or run(["cmake", "--build", build, "--target", *targets_for(chosen)], log) != 0:
        sys.exit(f"the unmutated tree does not build: see {log}")
    print("== the unmutated tree must pass every stage", flush=True)
    for name in chosen:
        if failed_tests(build, name, log):
            sys.exit(f"stage {name} fails without any mutant: see {log}")

    originals = {}

    def restore(*_):
        for path, text in originals.items():
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        originals.clear()

    def interrupted(*_):
        restore()
        sys.exit("interrupted: sources restored")

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)

    # Grouped by file, so each file is recompiled as few times as possible.
    order = sorted(mutants, key=lambda m: m.file)
    started = time.time()
    try:
        for i, m in enumerate(order, 1):
            t0 = time.time()
            path = os.path.join(ROOT, m.file)
            text = open(path, encoding="utf-8").read()
            originals[path] = text
            at = locate(m, text)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text[:at] + m.replace + text[at + len(m.find):])
            with open(log, "a") as out:
                out.write(f"\n==== mutant {m.id}\n")
            if run(["cmake", "--build", build, "--target", *targets_for(stages_for(m, chosen))], log) != 0:
                m.status, m.caught_by = "caught", ["(does not compile)"]
            else:
                m.status = "survived"
                for name in stages_for(m, chosen):
                    failed = failed_tests(build, name, log)
                    if failed:
                        m.status, m.caught_by = "caught", failed
                        break
            restore()
            m.seconds = time.time() - t0
            shown = ", ".join(m.caught_by[:3]) + (" ..." if len(m.caught_by) > 3 else "")
            print(f"[{i}/{len(order)}] {m.id}: {m.status} {shown} ({m.seconds:.0f} s)", flush=True)
    finally:
        restore()
        print("== rebuilding the unmutated tree", flush=True)
        run(["cmake", "--build", build, "--target", *targets_for(chosen)], log)

    caught = sum(m.status == "caught" for m in mutants)
    rate = 100.0 * caught / len(mutants)
    rows = ["| mutant | where | guarantee it breaks | caught by |", "|---|---|---|---|"]
    for m in mutants:
        by = ", ".join(f"`{t}`" for t in m.caught_by[:3]) if m.status == "caught" else "**survived**"
        rows.append(f"| `{m.id}` | `{m.file}:{m.line}` | {m.breaks} | {by} |")
    summary = (f"{caught} of {len(mutants)} mutants caught ({rate:.1f} %) in "
               f"{(time.time() - started) / 60:.1f} minutes")
    print("\n" + "\n".join(rows) + "\n\n" + summary)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(rows) + "\n\n" + summary + "\n")
    return 0 if rate >= args.min_rate else 1


if __name__ == "__main__":
    sys.exit(main())
