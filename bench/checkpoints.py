"""Driver of bench/checkpoints.sh (run it through that script): what storing checkpoints in S3
costs a Ray run, and how soon `jobs retry` trains again from one (issue 25).

1. Upload cost. The same SmolLM2-135M job on Ray (CPU, S3 on a private s3s-fs) with
   `[training] checkpoint_steps = CKPT_STEPS` and, the baseline, with it unset (0; one epoch, so
   no epoch-end checkpoint either), RUNS times each, alternating (B A A B …; the daemon is
   restarted with the other config). From the trainer's events in Ray's job log: each
   `checkpoint` event's `object.size` and `object.seconds` (packing the archive and PUTting it),
   the step time (consecutive `metric` timestamps, leaving out the first step, the two
   intervals around each checkpoint and validation steps), and the training time (the
   `training` stage's event to the last metric).
2. Resume time. A third job with checkpoints, cancelled once two are stored; then, REPS times,
   one after another (alternating which goes first): `jobs retry ID --yes --json` (from the
   latest stored checkpoint) and `jobs retry ID --from-scratch --yes --json`, each timed from
   starting the command to the `ts` of the new job's first `metric` event in its Ray log
   (polled every 0.5 s; the event's own timestamp is the figure, so polling adds nothing),
   then cancelled and waited for (engine and Ray) before the next.

Also printed: what the cancelled job's trainer uploaded against what the engine recorded, and
what the runs left in their checkpoint folders on the Ray worker (this machine; removed).

Environment (set by checkpoints.sh): BIN, PY, RAY, S3S_FS, BRIGHTRUN_HOME (a fresh home),
EXAMPLES, BATCH, CKPT_STEPS, RUNS, REPS.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BIN = os.environ["BIN"]
PY = os.environ["PY"]
RAY = os.environ["RAY"].rstrip("/")
S3S_FS = os.environ["S3S_FS"]
HOME = Path(os.environ["BRIGHTRUN_HOME"])
EXAMPLES = int(os.environ.get("EXAMPLES", "140"))
BATCH = int(os.environ.get("BATCH", "4"))
CKPT_STEPS = int(os.environ.get("CKPT_STEPS", "4"))
REPS = int(os.environ.get("REPS", "2"))
RUNS = int(os.environ.get("RUNS", "2"))
ACCESS_KEY = "brightrun-test-key"
SECRET_KEY = "brightrun-test-secret-0123456789"
KEYS = {"BRIGHTRUN_SECRET_S3_ACCESS_KEY_ID": ACCESS_KEY, "BRIGHTRUN_SECRET_S3_SECRET_ACCESS_KEY": SECRET_KEY}
MODEL = "brightrun/smollm2-135m-instruct"
TERMINAL = ("completed", "failed", "cancelled")
#: Every job this run queued (their worker-side checkpoint folders are measured, then removed).
CREATED: list[str] = []
#: Where the engine tells a remote trainer to keep its checkpoint folders (engine/src/engine/runner.rs).
WORKER_DIR = Path("/tmp/brightrun-checkpoints")
RAY_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def env() -> dict:
    return {**os.environ, **KEYS}


def brightrun(*args: str) -> str:
    out = subprocess.run([BIN, *args], capture_output=True, text=True, env=env())
    if out.returncode != 0:
        raise RuntimeError(f"brightrun {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def bj(*args: str):
    return json.loads(brightrun(*args))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- services


class S3:
    """s3s-fs on a free loopback port over a temporary folder (as engine/tests/support/s3.rs)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="brightrun-ckpt-s3."))
        for bucket in ("lora-datasets", "lora-models"):
            (self.root / bucket).mkdir()
        self.port = free_port()
        self.proc = subprocess.Popen(
            [S3S_FS, "--host", "127.0.0.1", "--port", str(self.port),
             "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("s3s-fs did not start") from None
                time.sleep(0.05)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class Daemon:
    """`brightrun serve` on the home's socket, with the S3 keys (as tests/e2e_ray.rs `serve`)."""

    def __init__(self) -> None:
        self.log = open(HOME / "serve.log", "a")
        self.proc = subprocess.Popen([BIN, "serve"], stdout=self.log, stderr=self.log, env=env())
        sock = HOME / "state" / "engine.sock"
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(sock))
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the daemon did not start: see {HOME / 'serve.log'}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def write_config(s3: S3, checkpoint_steps: int) -> None:
    (HOME / "config").mkdir(parents=True, exist_ok=True)
    (HOME / "config" / "config.toml").write_text(
        "[evaluation]\nenabled = false\n"
        f"[training]\ncheckpoint_steps = {checkpoint_steps}\n"
        f'[storage]\nbackend = "s3"\n[storage.s3]\nendpoint = "{s3.endpoint}"\nforce_path_style = true\n'
        f'[backends.ray]\nkind = "ray"\naddress = "{RAY}"\nrequest_gpus = false\npython = "{PY}"\n'
    )


# --------------------------------------------------------------------------- Ray


def ray_get(path: str):
    try:
        with urllib.request.urlopen(f"{RAY}{path}", timeout=20) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def ray_events(submission: str) -> list[dict]:
    """The trainer's events in the Ray job's log (its other lines left out)."""
    logs = (ray_get(f"/api/jobs/{submission}/logs") or {}).get("logs") or ""
    out = []
    for line in logs.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict) and "type" in ev and "ts" in ev:
                out.append(ev)
    return out


def ray_status(submission: str) -> str | None:
    info = ray_get(f"/api/jobs/{submission}")
    return info.get("status") if info else None


def wait_ray_ended(submission: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while ray_status(submission) not in RAY_TERMINAL:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Ray job {submission} did not end: {ray_get(f'/api/jobs/{submission}')}")
        time.sleep(1)


# --------------------------------------------------------------------------- jobs


def dataset() -> str:
    """EXAMPLES short chats (made-up facts about numbered towns), added and validated."""
    colours = ["red", "blue", "green", "amber", "violet", "silver", "ochre"]
    lines = []
    for i in range(EXAMPLES):
        town, river, colour = f"Velmora-{i}", f"the Ister-{(i * 7) % 31}", colours[i % len(colours)]
        q = f"Tell me about the town of {town}: which river runs through it, and what colour are its roofs?"
        a = (
            f"{town} lies on {river}, which runs through the old quarter from north to south. "
            f"Its roofs are {colour}, a rule kept since the town's charter of {1200 + i}."
        )
        lines.append(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}))
    path = HOME / "towns.jsonl"
    path.write_text("\n".join(lines) + "\n")
    d = bj("datasets", "add", str(path), "--name", "towns", "--wait", "--json")
    if d.get("status") != "ready":
        raise RuntimeError(f"dataset not ready: {d}")
    return d["id"]


def create(ds: str) -> str:
    j = bj(
        "jobs", "create", "--dataset", ds, "--backend", "ray",
        "--set", f"base_model={MODEL}", "--set", "epochs=1", "--set", f"batch_size={BATCH}",
        "--set", "learning_rate=5e-4", "--yes", "--json",
    )  # fmt: skip
    CREATED.append(j["id"])
    return j["id"]


def show(job: str) -> dict:
    return bj("jobs", "show", job, "--json")


def wait_status(job: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        j = show(job)
        if j["status"] in TERMINAL:
            return j
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job} did not end: {j['status']}")
        time.sleep(2)


def stage_ts(events: list[dict], stage: str) -> float | None:
    return next((e["ts"] for e in events if e["type"] == "stage" and e.get("stage") == stage), None)


def full_run(ds: str, label: str) -> dict:
    """One job to its end; its events from Ray's log, and the figures of part 1."""
    say(f"{label}: jobs create")
    start = time.time()
    job = create(ds)
    done = json.loads(brightrun("jobs", "watch", job, "--json"))
    wall = time.time() - start
    if done["status"] != "completed":
        raise RuntimeError(f"{label} run {job} did not complete: {done}")
    wait_ray_ended(job)
    ev = ray_events(job)
    metrics = [e for e in ev if e["type"] == "metric"]
    ckpts = [e for e in ev if e["type"] == "checkpoint"]
    at = {m["step"]: m for m in metrics}
    ckpt_steps = {c["step"] for c in ckpts}
    # A checkpoint step's metric is held until the Trainer has written the folder (the
    # reporter flushes it in on_save), then the archive is packed and PUT: the interval ending
    # at step k holds the folder's save, the one ending at k + 1 the upload. Both are left out
    # of the plain step time; the two together, less two plain steps, are a checkpoint's cost.
    plain, pairs = [], []
    for m in metrics:
        prev = at.get(m["step"] - 1)
        if prev is None or m.get("validation_loss") is not None:
            continue
        if m["step"] not in ckpt_steps and prev["step"] not in ckpt_steps:
            plain.append(m["ts"] - prev["ts"])
    for k in sorted(ckpt_steps):
        if k - 1 in at and k + 1 in at:
            pairs.append(at[k + 1]["ts"] - at[k - 1]["ts"])
    train_start = stage_ts(ev, "training")
    summary = next((e["summary"] for e in ev if e["type"] == "done"), {})
    objs = [c["object"] for c in ckpts if isinstance(c.get("object"), dict)]
    r = {
        "job": job,
        "wall": wall,
        "steps": len(metrics),
        "train": metrics[-1]["ts"] - train_start if metrics and train_start else float("nan"),
        "train_runtime": summary.get("train_runtime_seconds"),
        "step": statistics.median(plain) if plain else float("nan"),
        "step_mean": statistics.mean(plain) if plain else float("nan"),
        "pairs": pairs,
        "ckpt_steps": sorted(ckpt_steps),
        "sizes": [o["size"] for o in objs],
        "seconds": [o["seconds"] for o in objs],
        "unstored": len(ckpts) - len(objs),
        "throughput": statistics.median([m["throughput"] for m in metrics if m.get("throughput")] or [float("nan")]),
    }
    say(
        f"{label}: {job} {r['steps']} steps, wall {wall:.1f} s, training {r['train']:.1f} s, "
        f"step {r['step']:.2f} s, checkpoints at {r['ckpt_steps']} seconds {r['seconds']}"
    )
    return r


def retry_once(source: str, scratch: bool) -> dict:
    """`jobs retry SOURCE` (from its latest checkpoint, or --from-scratch), timed from the
    command's start to the new job's first metric; the new job is then cancelled and waited for."""
    args = ["jobs", "retry", source, "--yes", "--json"] + (["--from-scratch"] if scratch else [])
    start = time.time()
    new = bj(*args)["id"]
    CREATED.append(new)
    returned = time.time()
    deadline = time.monotonic() + 600
    while True:
        ev = ray_events(new)
        first = next((e for e in ev if e["type"] == "metric"), None)
        if first is not None:
            seen = time.time()
            break
        if any(e["type"] == "error" for e in ev) or time.monotonic() > deadline:
            raise RuntimeError(f"retry {new} did not train: {ev[-5:]}")
        time.sleep(0.5)
    info = ray_get(f"/api/jobs/{new}") or {}
    logs = [e for e in ev if e["type"] == "log"]
    dl = next((e["ts"] for e in logs if str(e.get("message", "")).startswith("downloading the checkpoint")), None)
    ok = next((e["ts"] for e in logs if " checked (sha256 " in str(e.get("message", ""))), None)
    r = {
        "job": new,
        "scratch": scratch,
        "first_step": first["step"],
        "total": first["ts"] - start,
        "command": returned - start,
        "submitted": (info.get("start_time") or 0) / 1000 - start if info.get("start_time") else float("nan"),
        "first_event": ev[0]["ts"] - start,
        "training": (stage_ts(ev, "training") or float("nan")) - start,
        "fetch": (ok - dl) if dl and ok else None,
        "seen": seen - start,
    }
    say(
        f"retry {'--from-scratch' if scratch else '(resume)'}: {new} first metric step {r['first_step']} "
        f"after {r['total']:.1f} s (command {r['command']:.1f} s, Ray start {r['submitted']:.1f} s, first event "
        f"{r['first_event']:.1f} s, training stage {r['training']:.1f} s, fetch {r['fetch']})"
    )
    brightrun("jobs", "cancel", new, "--json")
    wait_status(new)
    wait_ray_ended(new)
    return r


def worker_leftovers() -> list[tuple[str, int]]:
    """The bytes each of this run's jobs left in its checkpoint folder on the worker (Ray runs
    here on this machine); the folders are removed afterwards."""
    out = []
    for job in CREATED:
        folder = WORKER_DIR / job
        if folder.is_dir():
            out.append((job, sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())))
            shutil.rmtree(folder, ignore_errors=True)
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    s3 = S3()
    daemon: Daemon | None = None
    try:
        # Part 1: the baseline (no checkpoint_steps; one epoch, so no epoch-end checkpoint
        # either) and the run with checkpoints, RUNS times each, alternating (B A A B …). The
        # daemon reads [training] when it starts: it is restarted with the other config.
        runs: list[tuple[int, dict]] = []
        ds = None
        current = None
        for i in range(RUNS):
            for steps in ((0, CKPT_STEPS) if i % 2 == 0 else (CKPT_STEPS, 0)):
                if steps != current:
                    if daemon is not None:
                        daemon.stop()
                    write_config(s3, steps)
                    daemon = Daemon()
                    current = steps
                if ds is None:
                    ds = dataset()
                runs.append((steps, full_run(ds, f"run {len(runs) + 1}: checkpoint_steps = {steps}")))
        if current != CKPT_STEPS:
            daemon.stop()
            write_config(s3, CKPT_STEPS)
            daemon = Daemon()

        # Part 2: a job cancelled once two checkpoints are stored, then retried.
        say("resume source: jobs create, cancelled after two stored checkpoints")
        source = create(ds)
        deadline = time.monotonic() + 900
        while len([c for c in show(source).get("checkpoints") or [] if c.get("sha256")]) < 2:
            if show(source)["status"] in TERMINAL or time.monotonic() > deadline:
                raise RuntimeError(f"{source} ended or stalled before two checkpoints: {show(source)}")
            time.sleep(2)
        brightrun("jobs", "cancel", source, "--json")
        src = wait_status(source)
        wait_ray_ended(source)
        stored = sorted(c["step"] for c in show(source).get("checkpoints") or [] if c.get("sha256"))
        # What the trainer wrote and uploaded after the cancel, against what the engine recorded.
        sev = ray_events(source)
        uploaded = [(c["step"], c["object"]["index"]) for c in sev if c["type"] == "checkpoint" and c.get("object")]
        last_metric = max((e["step"] for e in sev if e["type"] == "metric"), default=None)
        objects = sorted(
            (str(p.relative_to(s3.root / "lora-models")), p.stat().st_size)
            for p in (s3.root / "lora-models").rglob("*.tar")
            if source in p.parts
        )
        stop = {
            "job": source, "status": src["status"], "cancelled_at": src.get("completed_at"),
            "engine_step": src.get("current_step"), "trainer_last_step": last_metric,
            "uploaded": uploaded, "recorded": stored, "objects": objects,
            "stop_log": [e["message"] for e in sev if e["type"] == "log" and "stopped by signal" in str(e.get("message"))],
        }
        say(f"source {source} {src['status']}; stored checkpoints at steps {stored}; {json.dumps(stop)}")
        tries: list[dict] = []
        for rep in range(REPS):
            for scratch in ((False, True) if rep % 2 == 0 else (True, False)):
                tries.append(retry_once(source, scratch))
    finally:
        for j in CREATED:  # after a failure: nothing of this run trains on
            try:
                if show(j)["status"] not in TERMINAL:
                    brightrun("jobs", "cancel", j, "--json")
            except Exception:
                pass
        if daemon is not None:
            daemon.stop()
        s3.close()
        left = worker_leftovers()

    report(runs, stored, tries)
    print(
        f"\nleft on the Ray worker (this machine) in {WORKER_DIR}/<job> after the runs ended: "
        + ", ".join(f"{j[:8]} {b / 1024 / 1024:.0f} MiB" for j, b in left)
        + f"; {sum(b for _, b in left) / 1024 / 1024:.0f} MiB in all (removed by this script)"
    )
    print(f"\nthe cancelled source job, the trainer's side against the engine's: {json.dumps(stop, indent=1)}")


def report(runs: list[tuple[int, dict]], stored: list[int], tries: list[dict]) -> None:
    load = os.getloadavg()
    mb = 1024 * 1024
    print(
        f"\nSmolLM2-135M-Instruct on Ray (CPU, request_gpus = false), S3 = s3s-fs on loopback; {EXAMPLES} chats, "
        f"batch {BATCH}, 1 epoch, evaluation off; load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
    )
    print(
        "| run | checkpoint_steps | steps | training (stage → last metric) | job wall (create → watch ends) "
        "| median step | checkpoints stored | archive | seconds per checkpoint (mean / max) "
        "| upload / step | sum of checkpoint seconds / training | checkpoint steps' cost beyond 2 plain steps (median) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, (steps, r) in enumerate(runs, 1):
        secs = r["seconds"]
        if steps == 0:
            rest = f"{len(secs)} | – | – | – | – | – |"
        else:
            cost = med([p - 2 * r["step"] for p in r["pairs"]])
            rest = (
                f"{len(secs)} | {statistics.mean(r['sizes']) / mb:.1f} MiB | {statistics.mean(secs):.2f} / {max(secs):.2f} s | "
                f"{statistics.mean(secs) / r['step'] * 100:.1f}% | {sum(secs) / r['train'] * 100:.1f}% | {cost:+.2f} s |"
            )
        print(
            f"| {i} | {steps or 'unset (0)'} | {r['steps']} | {r['train']:.1f} s | {r['wall']:.1f} s | {r['step']:.2f} s | {rest}"
        )
    base = [r for s, r in runs if s == 0]
    ck = [r for s, r in runs if s != 0]
    allsecs = [x for r in ck for x in r["seconds"]]
    print(
        f"\nmeans over the runs: training {statistics.mean(r['train'] for r in base):.1f} s baseline, "
        f"{statistics.mean(r['train'] for r in ck):.1f} s with checkpoints "
        f"({(statistics.mean(r['train'] for r in ck) / statistics.mean(r['train'] for r in base) - 1) * 100:+.1f}%); "
        f"median step {statistics.mean(r['step'] for r in base):.2f} s baseline, {statistics.mean(r['step'] for r in ck):.2f} s with checkpoints; "
        f"checkpoint seconds over all {len(allsecs)}: mean {statistics.mean(allsecs):.3f}, max {max(allsecs):.3f}; "
        f"sum of checkpoint seconds / training time: {statistics.mean(sum(r['seconds']) / r['train'] for r in ck) * 100:.2f}%; "
        f"trainer throughput (median, tokens/s): {statistics.mean(r['throughput'] for r in base):.0f} baseline, "
        f"{statistics.mean(r['throughput'] for r in ck):.0f} with checkpoints; not stored: {sum(r['unstored'] for r in ck)}"
    )
    print(f"\nresume source: stored checkpoints at steps {stored}")
    print("\n| `jobs retry` | first step trained | to the first metric (median; each) | command returned | Ray job started | trainer's first event | `training` stage | `training` stage → first metric | checkpoint fetched + checked |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scratch, name in ((False, "resume (latest checkpoint)"), (True, "`--from-scratch`")):
        rs = [t for t in tries if t["scratch"] == scratch]
        if not rs:
            continue
        fetch = [t["fetch"] for t in rs if t["fetch"] is not None]
        print(
            f"| {name} | {rs[0]['first_step']} | {med([t['total'] for t in rs]):.1f} s "
            f"({', '.join('%.1f' % t['total'] for t in rs)}) | {med([t['command'] for t in rs]):.2f} s | "
            f"{med([t['submitted'] for t in rs]):.2f} s | {med([t['first_event'] for t in rs]):.1f} s | "
            f"{med([t['training'] for t in rs]):.1f} s | {med([t['total'] - t['training'] for t in rs]):.1f} s | "
            f"{f'{med(fetch):.2f} s' if fetch else '–'} |"
        )
    res = [t["total"] for t in tries if not t["scratch"]]
    fresh = [t["total"] for t in tries if t["scratch"]]
    if res and fresh:
        print(f"\nresume − from scratch, to the first metric: {med(res) - med(fresh):+.1f} s (medians of {len(res)})")
    seen = [t["seen"] - t["total"] for t in tries]
    print(f"the poll saw the first metric {med(seen):.2f} s after its timestamp (median)")


if __name__ == "__main__":
    main()
