#!/usr/bin/env python3
"""tools/bench: mp against CPython, Boost.Interprocess and the raw limit, side by side.

Runs every workload of workloads.json in one run: the mp, Boost and raw-limit figures come from the
components' Google Benchmark binaries (built with -c opt by tools/bench/run), the CPython figures from
cpython_bench.py on the machine's python3. Each figure is the median of --repeats runs; the table
also shows the spread of mp's and the limit's runs (min–max; bench.json has CPython's too), and
--check judges the medians.

Writes OUT/bench.json, OUT/bench.md and OUT/bench.png and OUT/curves.png (gnuplot), prints the table, and with --check
prints each row's target from targets.json, the measurement and whether it is met.

Usage (normally through tools/bench/run):
  bench.py --bin-dir BAZEL_BIN --out OUT [--repeats N] [--quick] [--check] [--only REGEX]
"""

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def progress(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_json(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


def binary_path(bin_dir, label):
    # "//pkg:name" -> BIN/pkg/name
    m = re.fullmatch(r"//([^:]*):(.+)", label)
    if not m:
        raise SystemExit(f"bench: bad binary label {label!r} in workloads.json")
    return os.path.join(bin_dir, m.group(1), m.group(2))


class GBenchRunner:
    """Runs each benchmark binary once per needed filter and caches the parsed results."""

    def __init__(self, bin_dir, repeats, quick):
        self.bin_dir = bin_dir
        self.repeats = repeats
        self.quick = quick
        self.cache = {}

    def run(self, label, names):
        """Returns {benchmark name: {run_name fields}} for the median aggregate of each name (the
        only run when --repeats is 1), with the runs of every repetition under "_runs"."""
        key = (label, tuple(sorted(names)))
        if key in self.cache:
            return self.cache[key]
        path = binary_path(self.bin_dir, label)
        if not os.path.exists(path):
            raise SystemExit(f"bench: {path} not built (run tools/bench/run, which builds it)")
        pattern = "^(" + "|".join(re.escape(n) for n in names) + ")$"
        cmd = [path, f"--benchmark_filter={pattern}", "--benchmark_format=json",
               f"--benchmark_repetitions={self.repeats}"]
        if self.quick:
            cmd.append("--benchmark_min_time=0.05")
        progress(f"running {label} ({len(names)} benchmarks)")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        data = json.loads(proc.stdout)
        out, runs = {}, {}
        for b in data.get("benchmarks", []):
            name = b.get("run_name", b["name"])
            if b.get("run_type") == "aggregate":
                if b.get("aggregate_name") == "median":
                    out[name] = b
            else:
                runs.setdefault(name, []).append(b)
        for name, reps in runs.items():
            if name not in out:  # one repetition: no aggregates
                out[name] = dict(reps[0])
            out[name]["_runs"] = reps
        missing = [n for n in names if n not in out]
        if missing:
            raise SystemExit(f"bench: {label} has no benchmark named {missing}")
        self.cache[key] = out
        return out


TIME_SCALE = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
UNIT_SCALE = {"ns/op": 1e-9, "us/op": 1e-6, "ms/op": 1e-3}


def convert(bench, unit, rate=None):
    """Google Benchmark result -> value in the workload's unit. With `rate` (the name of a rate
    counter, e.g. "total_ops" of a benchmark whose processes all work), a per-op unit is the time per
    op across all of them, 1 / rate, as cpython_bench.py measures it; else the timed loop's time."""
    if unit in UNIT_SCALE:
        if rate is not None:
            if not bench.get(rate):
                raise SystemExit(f"bench: {bench.get('name')} has no counter {rate!r}")
            return 1.0 / bench[rate] / UNIT_SCALE[unit]
        seconds = bench["real_time"] * TIME_SCALE[bench["time_unit"]]
        return seconds / UNIT_SCALE[unit]
    if unit == "msg/s":
        return bench["items_per_second"]
    if unit == "GB/s":
        return bench["bytes_per_second"] / 1e9
    raise SystemExit(f"bench: unknown unit {unit!r}")


def lower_is_better(unit):
    return unit.endswith("/op")


def ratio(mp_value, other, unit):
    """How many times better (>1) or worse (<1) mp is than `other`; None when either is missing."""
    if mp_value is None or other is None or mp_value == 0 or other == 0:
        return None
    return other / mp_value if lower_is_better(unit) else mp_value / other


def fmt(v):
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def run_cpython(repeats, quick, scaling=False, only=""):
    cmd = [shutil.which("python3") or sys.executable,
           os.path.join(HERE, "cpython_bench.py"), "--repeats", str(repeats), "--only", only]
    if quick:
        cmd.append("--quick")
    if scaling:
        cmd.append("--scaling")
    progress("running CPython multiprocessing (cpython_bench.py" + (" --scaling)" if scaling else ")"))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit("bench: cpython_bench.py failed")
    return json.loads(proc.stdout)


def curve_names(curves):
    """{curve: [(arg, binary, benchmark name)]} for the curves of workloads.json."""
    return {name: [(a, c["binary"], c["benchmark"].format(a)) for a in c["args"]]
            for name, c in curves.items()}


def measure(workloads, curves, runner, cpython):
    # One run per binary: gather the names each binary must run, curves included.
    wanted = {}
    for w in workloads:
        for side in ("mp", "boost", "limit"):
            spec = w.get(side)
            if spec:
                wanted.setdefault(spec["binary"], set()).add(spec["benchmark"])
    for points in curve_names(curves).values():
        for _, binary, bench in points:
            wanted.setdefault(binary, set()).add(bench)
    results = {label: runner.run(label, sorted(names)) for label, names in wanted.items()}
    rows = []
    for w in workloads:
        row = {"workload": w["name"], "unit": w["unit"]}
        for side in ("mp", "boost", "limit"):
            spec = w.get(side)
            bench = results[spec["binary"]][spec["benchmark"]] if spec else None
            row[side] = convert(bench, w["unit"], spec.get("rate")) if spec else None
            # The spread of the repeats: their smallest and largest figure.
            values = ([convert(b, w["unit"], spec.get("rate")) for b in bench.get("_runs", [bench])]
                      if spec else [])
            row[side + "_range"] = [min(values), max(values)] if values else None
        cp = cpython.get(w.get("cpython", w["name"])) if cpython else None
        row["cpython"] = cp["value"] if cp else None
        row["cpython_range"] = [cp["min"], cp["max"]] if cp and "min" in cp else None
        # Ratios: how many times faster than CPython; mp's cost relative to the limit.
        row["mp_vs_cpython"] = ratio(row["mp"], row["cpython"], w["unit"])
        r = ratio(row["mp"], row["limit"], w["unit"])
        row["mp_over_limit"] = None if r is None else 1.0 / r
        rows.append(row)
    curve_out = {}
    for name, points in curve_names(curves).items():
        unit = curves[name]["unit"]
        curve_out[name] = {
            "unit": unit,
            "mp": {str(a): convert(results[b][n], unit) for a, b, n in points},
        }
    return rows, curve_out


def fmt_range(r):
    return "—" if r is None else f"{fmt(r[0])}–{fmt(r[1])}"


def table(rows):
    """Each figure is the median of the repeats; the min–max columns are their spread."""
    head = ["workload", "unit", "CPython", "Boost", "mp", "mp min–max", "limit", "limit min–max",
            "mp vs CPython", "mp / limit"]
    body = [[r["workload"], r["unit"], fmt(r["cpython"]), fmt(r["boost"]), fmt(r["mp"]),
             fmt_range(r["mp_range"]), fmt(r["limit"]), fmt_range(r["limit_range"]),
             fmt_ratio(r["mp_vs_cpython"]), fmt_ratio(r["mp_over_limit"])]
            for r in rows]
    return head, body


def print_table(head, body):
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(head))
    print(line)
    print("-" * len(line))
    for b in body:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(b)))


def markdown(head, body):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(b) + " |" for b in body]
    return "\n".join(out) + "\n"


def check(rows, targets):
    """Prints target, measurement, met per row; returns the number of unmet targets."""
    by_name = {r["workload"]: r for r in rows}
    unmet = 0
    print("\ntarget check (targets.json):")
    for t in targets["targets"]:
        r = by_name.get(t["workload"])
        if r is None:  # not run (--only)
            continue
        what, op, goal = t["measure"], t["op"], t["value"]
        value = {"mp": r["mp"], "mp_over_limit": r["mp_over_limit"],
                 "mp_vs_cpython": r["mp_vs_cpython"],
                 "mp_vs_boost": ratio(r["mp"], r["boost"], r["unit"])}.get(what)
        if value is None:
            met = False
        else:
            met = value <= goal if op == "<=" else value >= goal
        unmet += 0 if met else 1
        shown = "—" if value is None else f"{value:.3g}"
        print(f"  {'MET  ' if met else 'UNMET'} {t['workload']}: {what} {op} {goal} "
              f"(measured {shown}) — {t.get('source', '')}")
    return unmet


def chart(rows, out_dir):
    """mp vs CPython speed-up per workload, log scale, as PNG (gnuplot)."""
    gnuplot = shutil.which("gnuplot")
    data = [(r["workload"], r["mp_vs_cpython"]) for r in rows if r["mp_vs_cpython"]]
    if not gnuplot or not data:
        progress("gnuplot not found or nothing to plot: no chart")
        return None
    dat = os.path.join(out_dir, "bench.dat")
    with open(dat, "w") as f:
        for i, (name, r) in enumerate(data):
            f.write(f'{i} "{name}" {r:.4f}\n')
    svg = os.path.join(out_dir, "bench.png")
    script = f"""
set terminal pngcairo size 900,{120 + 28 * len(data)} font 'sans,10' background rgb 'white'
set output '{svg}'
set title 'mp speed-up over CPython multiprocessing (×, log scale; >1 is faster)'
set style fill solid 0.8
set logscale x
set xrange [0.3:*]
set ytics nomirror
set grid xtics
unset key
set yrange [-0.7:{len(data) - 0.3}]
plot '{dat}' using 3:1:($3<1?$3:1):($3<1?1:$3):($1-0.35):($1+0.35):ytic(2) with boxxyerror lc rgb '#2a6fb0', \\
     '{dat}' using 3:1:(sprintf('%.1f×', $3)) with labels left offset 0.5,0
"""
    proc = subprocess.run([gnuplot], input=script, text=True, capture_output=True)
    if proc.returncode != 0:
        progress(f"gnuplot failed: {proc.stderr[-500:]}")
        return None
    return svg


def curve_chart(curves, cpython_curves, out_dir):
    """Queue throughput curves, mp beside CPython, as PNG (gnuplot), log-log."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return None
    files = []
    for name, xlabel, ylabel, key in (("pairs", "producer/consumer pairs", "msg/s", None),
                                      ("sizes", "item size (bytes)", "GB/s", "GB/s")):
        if name not in curves:
            continue
        dat = os.path.join(out_dir, f"curve_{name}.dat")
        cp = (cpython_curves or {}).get(name, {})
        with open(dat, "w") as f:
            for x, y in curves[name]["mp"].items():
                c = cp.get(x)
                if isinstance(c, dict):
                    c = c.get(key)
                f.write(f"{x} {y:.6g} {c if c is not None else 'NaN'}\n")
        files.append((name, dat, xlabel, ylabel))
    if not files:
        return None
    svg = os.path.join(out_dir, "curves.png")
    plots = []
    for i, (name, dat, xlabel, ylabel) in enumerate(files):
        plots.append(f"""
set origin {0.5 * i},0
set size 0.5,1
set title 'Queue throughput by {xlabel}'
set xlabel '{xlabel}'
set ylabel '{ylabel}'
set logscale xy
set key bottom right
plot '{dat}' using 1:2 with linespoints lw 2 title 'mp', \\
     '{dat}' using 1:3 with linespoints lw 2 title 'CPython'
""")
    script = (f"set terminal pngcairo size 1100,420 font 'sans,10' background rgb 'white'\n"
              f"set output '{svg}'\nset multiplot\n" + "".join(plots) + "unset multiplot\n")
    proc = subprocess.run([gnuplot], input=script, text=True, capture_output=True)
    if proc.returncode != 0:
        progress(f"gnuplot failed: {proc.stderr[-500:]}")
        return None
    return svg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--only", default="", help="regex of workload names to run")
    ap.add_argument("--no-cpython", action="store_true")
    args = ap.parse_args()

    spec = load_json("workloads.json")
    workloads = [w for w in spec["workloads"] if re.search(args.only, w["name"])]
    curves = {} if args.only else spec.get("curves", {})
    os.makedirs(args.out, exist_ok=True)
    runner = GBenchRunner(args.bin_dir, args.repeats, args.quick)
    cpython = None if args.no_cpython else run_cpython(args.repeats, args.quick, only=args.only)
    cpython_curves = (None if args.no_cpython or not curves
                      else run_cpython(args.repeats, args.quick, scaling=True))
    rows, curve_rows = measure(workloads, curves, runner, cpython)

    head, body = table(rows)
    print()
    print_table(head, body)
    md = markdown(head, body)
    stamp = time.strftime("%Y-%m-%d")
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump({"date": stamp, "repeats": args.repeats, "quick": args.quick, "rows": rows,
                   "curves": curve_rows, "cpython_curves": cpython_curves}, f, indent=2)
    svg = chart(rows, args.out)
    curves_svg = curve_chart(curve_rows, cpython_curves, args.out)
    for name, c in curve_rows.items():
        cp = (cpython_curves or {}).get(name, {})
        print(f"\ncurve {name} ({c['unit']}): " + ", ".join(
            f"{x}: mp {fmt(y)}" + (f" / CPython {fmt(cp[x] if not isinstance(cp[x], dict) else cp[x]['GB/s'])}"
                                   if x in cp else "")
            for x, y in c["mp"].items()))
    progress(f"wrote {args.out}/bench.md, bench.json" +
             "".join(f", {os.path.basename(p)}" for p in (svg, curves_svg) if p))
    if args.check:
        unmet = check(rows, load_json("targets.json"))
        print(f"\n{unmet} target(s) unmet")


if __name__ == "__main__":
    main()
