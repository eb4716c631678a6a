#!/usr/bin/env python3
"""The load of bench/soak.sh against a running daemon's TCP listener (standard library only).

For --seconds: --clients clients loop on the list routes (GET /api/jobs, GET /api/datasets,
POST /api/v1/call {"op": "list_jobs"}) on keep-alive connections; --subscribers clients follow
GET /api/events; --idle TCP connections are opened and left silent; --slowloris connections
send one header byte every --slowloris-every seconds and never end their headers. A connection
of those two that the server closes is counted as cut and opened again.

At the start, every --interval seconds and at the end it samples the daemon (--pid): RSS and
open files (/proc/PID/status, /proc/PID/fd); with the latency of the list routes over the
interval (p50, p99), errors, server-sent events received, connections cut, the store file's
size (--store), and the job's progress (--job: the points its stand-in trainer printed, from --counter, and the step the
engine stored). Prints a table as it goes and a summary at the end, writes every sample as
JSON to --json, and exits 1 when open files at the end exceed --growth times the figure at one
interval (2), or RSS grows by more than --tail-growth (10%) over the run's last third (memory
still growing once the caches are full: growth without bound); 2 when the run could not be
measured.
"""

import argparse
import asyncio
import json
import os
import sys
import time

ROUTES = [
    ("GET /api/jobs", "GET", "/api/jobs", None),
    ("GET /api/datasets", "GET", "/api/datasets", None),
    ("POST /api/v1/call list_jobs", "POST", "/api/v1/call", b'{"op":"list_jobs"}'),
]


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def ms(v):
    return "-" if v is None else f"{v * 1000:.1f}"


class Http:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host, port, token):
        self.host, self.port, self.token = host, port, token
        self.reader = self.writer = None

    async def connect(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method, path, body=None):
        if self.writer is None:
            await self.connect()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\n"
        )
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        await self.writer.drain()
        status, headers = await read_head(self.reader)
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = await read_chunked(self.reader)
        else:
            data = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, data


async def read_head(reader):
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed before a status line")
    status = int(line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed in the headers")
        if line in (b"\r\n", b"\n"):
            return status, headers
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()


async def read_chunked(reader):
    out = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


class Stats:
    def __init__(self):
        self.window = {name: [] for name, *_ in ROUTES}
        self.all = {name: [] for name, *_ in ROUTES}
        self.errors = 0
        self.errors_total = 0
        self.error_kinds = {}
        self.sse_events = 0
        self.sse_events_total = 0
        self.sse_reconnects = 0
        self.sse_open = 0
        self.idle_cut = 0
        self.idle_open = 0
        self.slow_cut = 0
        self.slow_open = 0
        self.slow_bytes = 0

    def error(self, kind):
        self.errors += 1
        self.errors_total += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def list_client(i, args, stats, stop):
    http = Http(args.host, args.port, args.token)
    n = i  # spread the clients over the routes
    while not stop.is_set():
        name, method, path, body = ROUTES[n % len(ROUTES)]
        n += 1
        t0 = time.perf_counter()
        try:
            status, _ = await http.request(method, path, body)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            http.close()
            stats.error(type(e).__name__)
            await asyncio.sleep(0.1)
            continue
        took = time.perf_counter() - t0
        if status == 200:
            stats.window[name].append(took)
            stats.all[name].append(took)
        else:
            stats.error(f"HTTP {status}")
            await asyncio.sleep(0.1)
    http.close()


async def subscriber(args, stats, stop):
    after = None
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.open_connection(args.host, args.port)
            path = "/api/events" + (f"?after={after}" if after is not None else "")
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {args.host}\r\nAccept: text/event-stream\r\n"
                f"Authorization: Bearer {args.token}\r\n\r\n".encode()
            )
            await writer.drain()
            status, headers = await read_head(reader)
            if status != 200:
                stats.error(f"SSE HTTP {status}")
                raise ConnectionError(status)
            chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            stats.sse_open += 1
            try:
                pending = b""
                while not stop.is_set():
                    if chunked:
                        size = int((await reader.readline()).split(b";")[0], 16)
                        if size == 0:
                            break
                        data = await reader.readexactly(size + 2)
                        data = data[:-2]
                    else:
                        data = await reader.read(65536)
                        if not data:
                            break
                    *lines, pending = (pending + data).split(b"\n")
                    for line in lines:
                        if line.startswith(b"event: change") or line.startswith(b"event:change"):
                            stats.sse_events += 1
                            stats.sse_events_total += 1
                        elif line.startswith(b"id:"):
                            after = int(line[3:].strip() or 0)
            finally:
                stats.sse_open -= 1
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            if writer is not None:
                writer.close()
        if not stop.is_set():
            stats.sse_reconnects += 1
            await asyncio.sleep(0.5)


async def idle_conn(args, stats, stop):
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.open_connection(args.host, args.port)
            stats.idle_open += 1
            try:
                read = asyncio.ensure_future(reader.read(65536))
                done, _ = await asyncio.wait([read, asyncio.ensure_future(stop.wait())],
                                             return_when=asyncio.FIRST_COMPLETED)
                if read not in done:
                    read.cancel()
                    return
                read.result()  # data (an error reply) or EOF: the server is done with it
            finally:
                stats.idle_open -= 1
        except (OSError, ConnectionError):
            pass
        finally:
            if writer is not None:
                writer.close()
        if not stop.is_set():
            stats.idle_cut += 1
            await asyncio.sleep(1.0)


def slowloris_bytes():
    yield from b"GET /api/jobs HTTP/1.1\r\nHost: soak\r\n"
    i = 0
    while True:
        yield from f"X-Slow-{i}: {i}\r\n".encode()
        i += 1


async def slowloris_conn(args, stats, stop):
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.open_connection(args.host, args.port)
            stats.slow_open += 1
            try:
                read = asyncio.ensure_future(reader.read(65536))
                stopping = asyncio.ensure_future(stop.wait())
                for b in slowloris_bytes():
                    writer.write(bytes([b]))
                    await writer.drain()
                    stats.slow_bytes += 1
                    done, _ = await asyncio.wait([read, stopping], timeout=args.slowloris_every,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if stopping in done:
                        read.cancel()
                        return
                    if read in done:
                        read.result()
                        break
            finally:
                stats.slow_open -= 1
        except (OSError, ConnectionError):
            pass
        finally:
            if writer is not None:
                writer.close()
        if not stop.is_set():
            stats.slow_cut += 1
            await asyncio.sleep(1.0)


def store_size(args):
    try:
        return os.path.getsize(args.store) if args.store else None
    except OSError:
        return None


def proc_sample(pid):
    rss = hwm = threads = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss": rss, "hwm": hwm, "threads": threads, "fds": fds}


async def job_progress(args):
    """(points printed by the stand-in, step the engine stored) or Nones."""
    emitted = None
    try:
        with open(args.counter) as f:
            emitted = int(f.read().split()[0])
    except (OSError, ValueError, IndexError, TypeError):
        pass
    stored = None
    if args.job:
        http = Http(args.host, args.port, args.token)
        try:
            status, body = await asyncio.wait_for(http.request("GET", f"/api/jobs/{args.job}"), 30)
            if status == 200:
                data = json.loads(body)["data"]
                stored = data.get("current_step", data.get("currentStep"))
        except (OSError, ConnectionError, asyncio.TimeoutError, ValueError, KeyError):
            pass
        finally:
            http.close()
    return emitted, stored


HEADER = (
    f"{'t (s)':>6} {'reqs':>7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'p99 jobs':>8} "
    f"{'p99 ds':>7} {'p99 call':>8} {'errors':>6} {'RSS MB':>7} {'fds':>5} {'thr':>4} "
    f"{'SSE ev':>7} {'SSE up':>6} {'idle cut':>8} {'slow cut':>8} {'points':>8} {'stored':>8} "
    f"{'store MB':>8}"
)


async def sample(args, stats, t, window_s, samples):
    proc = proc_sample(args.pid)
    emitted, stored = await job_progress(args)
    lat = [v for name in stats.window for v in stats.window[name]]
    row = {
        "t": round(t, 1),
        "requests": len(lat),
        "req_per_s": len(lat) / window_s if window_s > 0 else 0.0,
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "p99_by_route": {name: percentile(v, 99) for name, v in stats.window.items()},
        "errors": stats.errors,
        "sse_events": stats.sse_events,
        "sse_open": stats.sse_open,
        "sse_reconnects": stats.sse_reconnects,
        "idle_open": stats.idle_open,
        "idle_cut": stats.idle_cut,
        "slowloris_open": stats.slow_open,
        "slowloris_cut": stats.slow_cut,
        "points_emitted": emitted,
        "points_stored": stored,
        "store_bytes": store_size(args),
        **proc,
    }
    samples.append(row)
    r = row["p99_by_route"]
    names = [n for n, *_ in ROUTES]
    print(
        f"{row['t']:>6.0f} {row['requests']:>7} {row['req_per_s']:>7.0f} {ms(row['p50']):>7} "
        f"{ms(row['p99']):>7} {ms(r[names[0]]):>8} {ms(r[names[1]]):>7} {ms(r[names[2]]):>8} "
        f"{row['errors']:>6} {row['rss'] / 2**20:>7.1f} {row['fds']:>5} {row['threads']:>4} "
        f"{row['sse_events']:>7} {row['sse_open']:>6} {row['idle_cut']:>8} {row['slowloris_cut']:>8} "
        f"{emitted if emitted is not None else '-':>8} {stored if stored is not None else '-':>8} "
        f"{(row['store_bytes'] or 0) / 2**20:>8.1f}",
        flush=True,
    )
    for name in stats.window:
        stats.window[name] = []
    stats.errors = 0
    stats.sse_events = 0


async def main(args):
    stats = Stats()
    stop = asyncio.Event()
    samples = []
    print(HEADER, flush=True)
    start = time.monotonic()
    await sample(args, stats, 0.0, 0.0, samples)
    tasks = []
    for i in range(args.idle):
        tasks.append(asyncio.ensure_future(idle_conn(args, stats, stop)))
    for i in range(args.slowloris):
        tasks.append(asyncio.ensure_future(slowloris_conn(args, stats, stop)))
    for i in range(args.subscribers):
        tasks.append(asyncio.ensure_future(subscriber(args, stats, stop)))
    for i in range(args.clients):
        tasks.append(asyncio.ensure_future(list_client(i, args, stats, stop)))
    last = start
    end = start + args.seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        await asyncio.sleep(min(args.interval - (now - last), end - now))
        now = time.monotonic()
        if now - last >= args.interval - 0.01 or now >= end:
            await sample(args, stats, now - start, now - last, samples)
            last = now
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    for t in tasks:
        t.cancel()

    # The figures at one interval (or the start, for a run shorter than that) and the end.
    base = next((s for s in samples if s["t"] >= args.interval - 1), samples[0])
    final = samples[-1]
    every = [v for name in stats.all for v in stats.all[name]]
    summary = {
        "seconds": args.seconds,
        "requests": len(every),
        "req_per_s": len(every) / args.seconds,
        "p50": percentile(every, 50),
        "p99": percentile(every, 99),
        "p999": percentile(every, 99.9),
        "max": max(every) if every else None,
        "p99_by_route": {name: percentile(v, 99) for name, v in stats.all.items()},
        "errors": stats.errors_total,
        "error_kinds": stats.error_kinds,
        "sse_events": stats.sse_events_total,
        "sse_reconnects": stats.sse_reconnects,
        "idle_cut": stats.idle_cut,
        "slowloris_cut": stats.slow_cut,
        "slowloris_bytes": stats.slow_bytes,
        "base_t": base["t"],
        "rss_base": base["rss"],
        "rss_end": final["rss"],
        "rss_peak": max(s["hwm"] or 0 for s in samples),
        "fds_start": samples[0]["fds"],
        "fds_base": base["fds"],
        "fds_end": final["fds"],
        "points_emitted": final["points_emitted"],
        "points_stored": final["points_stored"],
        "store_base": base["store_bytes"],
        "store_end": final["store_bytes"],
    }
    print()
    print(f"list routes: {summary['requests']} requests, {summary['req_per_s']:.0f}/s, "
          f"p50 {ms(summary['p50'])} ms, p99 {ms(summary['p99'])} ms, "
          f"p99.9 {ms(summary['p999'])} ms, max {ms(summary['max'])} ms; "
          f"errors {summary['errors']} {summary['error_kinds'] or ''}")
    for name, v in summary["p99_by_route"].items():
        print(f"  p99 {name}: {ms(v)} ms")
    print(f"SSE: {summary['sse_events']} change events over {args.subscribers} subscribers, "
          f"{summary['sse_reconnects']} reconnects")
    print(f"idle connections cut by the server: {summary['idle_cut']} (of {args.idle} held open); "
          f"slowloris connections cut: {summary['slowloris_cut']} (of {args.slowloris}, "
          f"{summary['slowloris_bytes']} header bytes sent)")
    print(f"job: {summary['points_emitted']} points printed, the engine at step {summary['points_stored']}")
    print(f"daemon RSS: {summary['rss_base'] / 2**20:.1f} MB at {summary['base_t']:.0f} s, "
          f"{summary['rss_end'] / 2**20:.1f} MB at the end (peak {summary['rss_peak'] / 2**20:.1f} MB); "
          f"open files: {summary['fds_start']} at the start, {summary['fds_base']} at "
          f"{summary['base_t']:.0f} s, {summary['fds_end']} at the end")
    if summary["store_end"] is not None and summary["store_base"] is not None:
        print(f"store file: {summary['store_base'] / 2**20:.1f} MB at {summary['base_t']:.0f} s, "
              f"{summary['store_end'] / 2**20:.1f} MB at the end (redb caches the pages it "
              f"writes, up to its cache size: RSS that grows with it is that cache)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "samples": samples}, f, indent=1)
    if not every:
        print("FAIL: no request of the list routes succeeded", file=sys.stderr)
        return 2
    bad = []
    # Memory that is bounded still grows while its caches fill (redb's page cache: 64 MiB);
    # growth without bound shows as growth that goes on. So RSS is judged over the last third
    # of the run: more than --tail-growth (10%) there fails (a run too short for the caches
    # to fill fails too: run it longer).
    late = [x for x in samples if x["t"] >= samples[-1]["t"] * 2 / 3 and x.get("rss")]
    if late and late[-1]["rss"] > (1 + args.tail_growth) * late[0]["rss"]:
        bad.append(
            f"RSS grew from {late[0]['rss']} bytes at {late[0]['t']:.0f} s to "
            f"{late[-1]['rss']} at {late[-1]['t']:.0f} s, over {args.tail_growth:.0%} in the "
            f"run's last third"
        )
    if summary["fds_end"] > args.growth * summary["fds_base"]:
        bad.append(
            f"open files grew from {summary['fds_base']} to {summary['fds_end']} "
            f"(more than {args.growth}x)"
        )
    if bad:
        print("FAIL: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--seconds", type=float, default=1800)
    p.add_argument("--interval", type=float, default=60)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--subscribers", type=int, default=50)
    p.add_argument("--idle", type=int, default=200)
    p.add_argument("--slowloris", type=int, default=20)
    p.add_argument("--slowloris-every", type=float, default=5.0)
    p.add_argument("--job", default=None)
    p.add_argument("--counter", default=None)
    p.add_argument("--store", default=None, help="the store file, whose size is sampled too")
    p.add_argument("--growth", type=float, default=2.0)
    p.add_argument("--tail-growth", type=float, default=0.10)
    p.add_argument("--json", default=None)
    sys.exit(asyncio.run(main(p.parse_args())))
