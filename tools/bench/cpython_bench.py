#!/usr/bin/env python3
"""CPython's multiprocessing on the workloads of tools/bench, for the side-by-side table.

Prints one JSON object: {"workload name": {"value": float, "min": float, "max": float, "unit":
str}, ...}. Each figure is the median of --repeats runs (min and max: their spread). Units match the mp side of tools/bench:
  us/op    microseconds per operation (lower is better)
  msg/s    messages per second (higher is better)
  GB/s     gigabytes per second (higher is better)
  ns/op    nanoseconds per operation (lower is better)
  ms/op    milliseconds per operation (lower is better)

Usage: python3 tools/bench/cpython_bench.py [--repeats N] [--quick]
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import multiprocessing as mp
import statistics
import sys
import time


# CPU placement, as the C++ benchmarks do it (testing/pin.h): in a multi-process workload this
# process runs on the first allowed CPU and its k-th child on CPU k (mod the count), so two talking
# processes always run on two different cores. MP_BENCH_NO_PIN=1 leaves placement to the scheduler.
CPUS = sorted(os.sched_getaffinity(0))
PIN = len(CPUS) >= 2 and not os.environ.get("MP_BENCH_NO_PIN")


def _pin(k):
    if PIN:
        os.sched_setaffinity(0, {CPUS[k % len(CPUS)]})


@contextlib.contextmanager
def _placed():
    """This process on the first CPU for the duration; every allowed CPU again afterwards."""
    _pin(0)
    try:
        yield
    finally:
        if PIN:
            os.sched_setaffinity(0, CPUS)


def _on_cpu(k, target, *args):
    _pin(k)
    target(*args)


def _child(ctx, k, target, *args):
    """A Process running target(*args) on CPU k (see _pin)."""
    return ctx.Process(target=_on_cpu, args=(k, target) + tuple(args))


def _trivial():
    pass


def start_join(method, n):
    ctx = mp.get_context(method)
    # Warm up (forkserver starts its server on first use).
    p = ctx.Process(target=_trivial)
    p.start()
    p.join()
    t0 = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=_trivial)
        p.start()
        p.join()
    return (time.perf_counter() - t0) / n * 1e6  # us/op


def _timed_round_trips(target, args, round_trip, n, warmup=100):
    """Starts target(*args) in a forked process, runs round_trip() `warmup` times, then times n
    calls of it; microseconds per call."""
    with _placed():
        p = _child(mp.get_context("fork"), 1, target, *args)
        p.start()
        for _ in range(warmup):
            round_trip()
        t0 = time.perf_counter()
        for _ in range(n):
            round_trip()
        dt = time.perf_counter() - t0
        p.join()
    return dt / n * 1e6


def _timed_stream(target, args, send, n, finish):
    """Starts target(*args) (a sink) in a forked process, then times n calls of send() followed by
    finish() (which waits until the sink has everything); seconds."""
    with _placed():
        p = _child(mp.get_context("fork"), 1, target, *args)
        p.start()
        t0 = time.perf_counter()
        for _ in range(n):
            send()
        finish()
        dt = time.perf_counter() - t0
        p.join()
    return dt


def _pipe_echo(conn, n):
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def pipe_roundtrip(n):
    a, b = mp.get_context("fork").Pipe()
    msg = b"x" * 64

    def round_trip():
        a.send_bytes(msg)
        a.recv_bytes()

    return _timed_round_trips(_pipe_echo, (b, n + 100), round_trip, n)  # us/op


def _pipe_sink(conn, n):
    for _ in range(n):
        conn.recv_bytes()
    conn.send_bytes(b"done")


def pipe_throughput(n, size=1 << 20):
    a, b = mp.get_context("fork").Pipe()
    msg = b"y" * size
    dt = _timed_stream(_pipe_sink, (b, n), lambda: a.send_bytes(msg), n, a.recv_bytes)
    return n * size / dt / 1e9  # GB/s


def _pipe_worker(conn):
    # An empty request ends it (each worker inherited every parent end, so no end of file comes).
    while True:
        msg = conn.recv_bytes()
        if not msg:
            return
        conn.send_bytes(msg)


def pipe_workers(rounds, workers=4):
    """The natural request/reply program: a parent and `workers` processes, one duplex Pipe each;
    each round the parent sends a 64-byte request to every worker, then receives every reply.
    Not pinned (as the C++ side, BM_PipeWorkers). Microseconds per round trip."""
    ctx = mp.get_context("fork")
    pipes = [ctx.Pipe() for _ in range(workers)]
    procs = []
    for i in range(workers):
        p = ctx.Process(target=_pipe_worker, args=(pipes[i][1],))
        p.start()
        procs.append(p)
    for _, child_end in pipes:
        child_end.close()
    msg = b"r" * 64
    conns = [a for a, _ in pipes]
    for _ in range(100):  # warm-up
        for c in conns:
            c.send_bytes(msg)
        for c in conns:
            c.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(rounds):
        for c in conns:
            c.send_bytes(msg)
        for c in conns:
            c.recv_bytes()
    dt = time.perf_counter() - t0
    for c in conns:
        c.send_bytes(b"")
    for p in procs:
        p.join()
    return dt / (rounds * workers) * 1e6


def _queue_consumer(q, n, done):
    for _ in range(n):
        q.get()
    done.put(1)


def _queue_producer(q, n, item):
    for _ in range(n):
        q.put(item)


def queue_throughput(n, pairs, item=b"12345678"):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    done = ctx.Queue()
    per = n // pairs
    # Pair i's consumer and producer on different cores.
    consumers = [_child(ctx, 2 * i + 1, _queue_consumer, q, per, done) for i in range(pairs)]
    producers = [_child(ctx, 2 * i + 2, _queue_producer, q, per, item) for i in range(pairs)]
    with _placed():
        for c in consumers:
            c.start()
        t0 = time.perf_counter()
        for p in producers:
            p.start()
        for _ in range(pairs):
            done.get()
        dt = time.perf_counter() - t0
        for p in producers + consumers:
            p.join()
    return per * pairs / dt  # msg/s


def _queue_echo(qin, qout, n):
    for _ in range(n):
        qout.put(qin.get())


def queue_roundtrip(n):
    ctx = mp.get_context("fork")
    qin, qout = ctx.Queue(), ctx.Queue()

    def round_trip():
        qin.put(1)
        qout.get()

    return _timed_round_trips(_queue_echo, (qin, qout, n + 100), round_trip, n)  # us/op


def lock_uncontended(n):
    lock = mp.get_context("fork").Lock()
    t0 = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return (time.perf_counter() - t0) / n * 1e9  # ns/op


def _lock_hammer(lock, n):
    for _ in range(n):
        lock.acquire()
        lock.release()


def lock_contended(n):
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    procs = [_child(ctx, k, _lock_hammer, lock, n) for k in (1, 2)]  # two cores
    with _placed():
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        dt = time.perf_counter() - t0
    return dt / (2 * n) * 1e9  # ns/op


def _event_pong(ping, pong, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong.set()


def event_pingpong(n):
    ctx = mp.get_context("fork")
    ping, pong = ctx.Event(), ctx.Event()
    with _placed():
        p = _child(ctx, 1, _event_pong, ping, pong, n)
        p.start()
        t0 = time.perf_counter()
        for _ in range(n):
            ping.set()
            pong.wait()
            pong.clear()
        dt = time.perf_counter() - t0
        p.join()
    return dt / n * 1e6  # us/op


# Item sizes of the size curve (the same Args as channels_benchmark's BM_QueueThroughputSize).
SCALING_SIZES = [8, 64, 512, 4096, 32768, 262144, 1 << 20, 4 << 20]
# Producer/consumer pairs of the pairs curve (BM_QueueThroughputPairs).
SCALING_PAIRS = [1, 2, 4, 8]


def queue_size_throughput(size, budget_bytes):
    """1 producer -> 1 consumer, items of `size` bytes, about `budget_bytes` in all (20 to 100,000
    items); returns (msg/s, GB/s)."""
    n = max(20, min(100000, budget_bytes // max(size, 1)))
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    done = ctx.Queue()
    item = b"s" * size
    dt = _timed_stream(_queue_consumer, (q, n, done), lambda: q.put(item), n, done.get)
    return n / dt, n * size / dt / 1e9


def scaling(args, n):
    """Curves: queue msg/s by producer/consumer pairs, and by item size (1 -> 1)."""
    pairs = {}
    for k in SCALING_PAIRS:
        vals = [queue_throughput(n(100000) // k * k, k) for _ in range(args.repeats)]
        pairs[str(k)] = statistics.median(vals)
        print(f"cpython: scaling pairs={k}: {pairs[str(k)]:.4g} msg/s", file=sys.stderr, flush=True)
    sizes = {}
    for size in SCALING_SIZES:
        vals = [queue_size_throughput(size, n(64 << 20)) for _ in range(args.repeats)]
        sizes[str(size)] = {"msg/s": statistics.median(v[0] for v in vals),
                            "GB/s": statistics.median(v[1] for v in vals)}
        print(f"cpython: scaling size={size}: {sizes[str(size)]['GB/s']:.4g} GB/s", file=sys.stderr,
              flush=True)
    return {"pairs": pairs, "sizes": sizes}


def _square(x):
    return x * x


def _busy_1ms(x):
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    return x


def pool_map(fn, n, processes=2):
    """Pool(processes).map(fn, range(n)) with the default chunksize, after a warm-up (the same
    workload as //pool:pool_benchmark); ms per map."""
    with mp.get_context("fork").Pool(processes) as pool:
        pool.map(fn, range(100))
        t0 = time.perf_counter()
        pool.map(fn, range(n))
        return (time.perf_counter() - t0) * 1e3


# concurrent.futures.ProcessPoolExecutor: two workers, fork, created once per figure outside the
# timed part and warmed up first (the executor starts its workers lazily), as //tools/bench's
# executor benchmarks do with mp::ProcessPoolExecutor.
EXECUTOR_WORKERS = 2


def _executor(initializer=None):
    return concurrent.futures.ProcessPoolExecutor(
        EXECUTOR_WORKERS, mp_context=mp.get_context("fork"), initializer=initializer)


def _warm_up(ex):
    for f in [ex.submit(_square, i) for i in range(10 * EXECUTOR_WORKERS)]:
        f.result()


def _pin_worker():
    _pin(1)


def executor_submit_result(n):
    """ex.submit(f, x).result() of a trivial task, one at a time; us per Submit+Result. Placed as
    the raw limit is (executor_limits_benchmark): this process on the first CPU, the workers on the
    second, so the request and the reply always cross cores."""
    with _placed(), _executor(initializer=_pin_worker) as ex:
        _warm_up(ex)
        t0 = time.perf_counter()
        for i in range(n):
            if ex.submit(_square, i).result() != i * i:
                raise SystemExit("cpython: executor returned a wrong result")
        return (time.perf_counter() - t0) / n * 1e6


def executor_submit_all(n):
    """n submits, then every result in submission order; us per submission. The row is "100,000
    Submits then all Results", but CPython takes 13-14 s for 100,000 on the 2-core VM, so this runs
    n = 10,000 and reports the time per submission. The per-submission cost of CPython grows with n
    (about 105 us at 10,000 against 130-140 us at 100,000 here), so the scaled figure flatters
    CPython: the ratio mp reaches against it is, if anything, understated."""
    with _executor() as ex:
        _warm_up(ex)
        t0 = time.perf_counter()
        futures = [ex.submit(_square, i) for i in range(n)]
        for i, f in enumerate(futures):
            if f.result() != i * i:
                raise SystemExit("cpython: executor returned a wrong result")
        return (time.perf_counter() - t0) / n * 1e6


def executor_map(n, chunksize):
    """list(ex.map(f, range(n), chunksize=chunksize)) of a trivial function; ms per map."""
    with _executor() as ex:
        _warm_up(ex)
        t0 = time.perf_counter()
        out = list(ex.map(_square, range(n), chunksize=chunksize))
        dt = time.perf_counter() - t0
        if len(out) != n or out[-1] != (n - 1) * (n - 1):
            raise SystemExit("cpython: executor.map returned a wrong result")
        return dt * 1e3


# Managers (multiprocessing.managers.SyncManager, fork context), as //managers:manager_benchmark
# runs mp::Manager: a dict proxy's d[k] = v then d[k] (one op: two calls, two round trips to the
# server), over the default Unix socket or TCP loopback, and 4 client processes hammering one dict.


def _start_manager(address=None, server_cpu=None):
    """A started SyncManager (fork); its server process on CPU `server_cpu` (None: unplaced), this
    process on the first CPU afterwards when placed."""
    from multiprocessing.managers import SyncManager
    if server_cpu is not None:
        _pin(server_cpu)  # the server process inherits it
    m = SyncManager(address=address, ctx=mp.get_context("fork"))
    m.start()
    if server_cpu is not None:
        _pin(0)
    return m


def _set_get(d, k, v):
    d[k] = v
    if d[k] != v:
        raise SystemExit("cpython: the manager dict returned a wrong value")


def manager_roundtrip(n, address=None):
    """d[k] = v; d[k] on a SyncManager dict proxy, this process on the first CPU and the server on
    the second (as the mp side and its raw limits are placed); us per pair (two calls)."""
    with _placed():
        m = _start_manager(address, server_cpu=1)
        try:
            d = m.dict()
            for i in range(200):  # warm up: the connection, the server's thread
                _set_get(d, i & 63, i)
            t0 = time.perf_counter()
            for i in range(n):
                _set_get(d, i & 63, i)
            dt = time.perf_counter() - t0
        finally:
            m.shutdown()
    return dt / n * 1e6


def _manager_client(d, c, n, ready, go, done):
    _set_get(d, 1000 * c, -1)  # the child's own reference and connection, before the clock
    ready.put(c)
    go.wait()
    for i in range(n):
        _set_get(d, 1000 * c + (i & 63), i)
    done.put(c)


def manager_clients(n, clients=4):
    """`clients` forked processes each doing n d[k] = v; d[k] pairs on one SyncManager dict proxy
    (the one they inherited), released together; timed from the release until the last is done.
    Not placed (as the mp side). Microseconds per call across all of them (1 / aggregate calls/s;
    each pair is two calls)."""
    ctx = mp.get_context("fork")
    m = _start_manager()
    try:
        d = m.dict()
        _set_get(d, 0, 0)
        ready, done, go = ctx.SimpleQueue(), ctx.SimpleQueue(), ctx.Event()
        procs = [ctx.Process(target=_manager_client, args=(d, c, n, ready, go, done))
                 for c in range(clients)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get()
        t0 = time.perf_counter()
        go.set()
        for _ in procs:
            done.get()
        dt = time.perf_counter() - t0
        for p in procs:
            p.join()
            if p.exitcode != 0:
                raise SystemExit("cpython: a manager client failed")
    finally:
        m.shutdown()
    return dt / (2 * n * clients) * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--only", default="", help="regex of workload names to run")
    parser.add_argument("--scaling", action="store_true",
                        help="print the scaling curves instead of the workloads")
    args = parser.parse_args()
    k = 0.1 if args.quick else 1.0

    def n(x):
        return max(1, int(x * k))

    if args.scaling:
        print(json.dumps(scaling(args, n), indent=2))
        return

    workloads = [
        ("start+join fork", "us/op", lambda: start_join("fork", n(200))),
        ("start+join spawn", "us/op", lambda: start_join("spawn", n(30))),
        ("start+join forkserver", "us/op", lambda: start_join("forkserver", n(100))),
        ("Pipe 64 B round trip", "us/op", lambda: pipe_roundtrip(n(20000))),
        ("Pipe 1 MiB throughput", "GB/s", lambda: pipe_throughput(n(500))),
        ("Pipe 4 workers x 5,000 round trips", "us/op", lambda: pipe_workers(n(5000))),
        ("Queue small items 1->1", "msg/s", lambda: queue_throughput(n(200000), 1)),
        ("Queue small items 4->4", "msg/s", lambda: queue_throughput(n(200000), 4)),
        ("Queue round trip", "us/op", lambda: queue_roundtrip(n(10000))),
        ("Queue 1 MiB items", "GB/s", lambda: queue_size_throughput(1 << 20, n(300 << 20))[1]),
        ("Lock uncontended", "ns/op", lambda: lock_uncontended(n(1000000))),
        ("Lock contended 2 procs", "ns/op", lambda: lock_contended(n(200000))),
        ("Event ping-pong", "us/op", lambda: event_pingpong(n(10000))),
        ("Pool.map 100,000 trivial tasks", "ms/op", lambda: pool_map(_square, 100000)),
        ("Pool.map 1,000 1 ms tasks", "ms/op", lambda: pool_map(_busy_1ms, 1000)),
        ("Executor Submit+Result trivial task", "us/op",
         lambda: executor_submit_result(n(2000))),
        # 10,000 submissions stand for 100,000 (see executor_submit_all): the figure is per submission.
        ("Executor 100,000 Submits then all Results", "us/op",
         lambda: executor_submit_all(n(10000))),
        ("Executor.map 100,000 trivial items (chunksize 1000)", "ms/op",
         lambda: executor_map(100000, 1000)),
        ("Manager dict round trip", "us/op", lambda: manager_roundtrip(n(4000))),
        ("Manager dict 4 clients", "us/op", lambda: manager_clients(n(1500))),
        ("Manager dict round trip TCP", "us/op",
         lambda: manager_roundtrip(n(4000), address=("127.0.0.1", 0))),
    ]
    out = {}
    for name, unit, fn in workloads:
        if not re.search(args.only, name):
            continue
        values = [fn() for _ in range(args.repeats)]
        out[name] = {"value": statistics.median(values), "min": min(values), "max": max(values),
                     "unit": unit}
        print(f"cpython: {name}: {out[name]['value']:.4g} {unit}", file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
