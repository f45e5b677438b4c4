#!/usr/bin/env python3
# CPython's side of //pool:pool_benchmark: Pool.map of 100,000 trivial tasks and of 1,000 1 ms tasks,
# with the same worker counts, start method and default chunksize. Prints the median of 5 runs.
#   python3 pool/pool_map.py [processes] [method]
import multiprocessing as mp
import statistics
import sys
import time


def trivial(x):
    return x * x


def one_ms(x):
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    return x


def bench(pool, fn, n, runs=5):
    xs = list(range(n))
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        pool.map(fn, xs)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


if __name__ == "__main__":
    processes = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    method = sys.argv[2] if len(sys.argv) > 2 else "fork"
    with mp.get_context(method).Pool(processes) as pool:
        pool.map(trivial, range(100))  # warm up
        t = bench(pool, trivial, 100_000)
        print(f"CPython {sys.version.split()[0]} Pool({processes}, {method}).map(trivial, 100000): "
              f"{t * 1e3:.2f} ms")
        t = bench(pool, one_ms, 1000, runs=3)
        print(f"CPython Pool({processes}, {method}).map(1 ms busy task, 1000): {t * 1e3:.2f} ms")
