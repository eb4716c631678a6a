"""Driver of bench/playground.sh (run it through that script): the playground's worker against
a bare transformers loop, and the first token embedded, over the Unix socket and over TCP.

Environment (set by playground.sh): BIN (the brightrun binary), PY (the trainer's Python),
BRIGHTRUN_HOME (a fresh home), REPS, MAX_NEW_TOKENS.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = os.environ["BIN"]
PY = os.environ["PY"]
HOME = Path(os.environ["BRIGHTRUN_HOME"])
REPS = int(os.environ.get("REPS", "3"))
N = int(os.environ.get("MAX_NEW_TOKENS", "128"))
ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Now tell the same story from the point of view of the bottle.",
]


def run(*args: str, stdin: str | None = None, env: dict | None = None) -> str:
    out = subprocess.run(
        args, input=stdin, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def brightrun(*args: str, **kw) -> str:
    return run(BIN, *args, **kw)


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def median(values: list[float]) -> float:
    return statistics.median(values)


def train() -> tuple[str, Path, Path]:
    """A short SmolLM2 run (the README's made-up fact, 1 epoch, no evaluation): its model id,
    its adapter folder and the base model's folder."""
    print("training a short SmolLM2-135M run for the adapter (1 epoch)...", file=sys.stderr)
    (HOME / "config").mkdir(parents=True, exist_ok=True)
    (HOME / "config" / "config.toml").write_text("[evaluation]\nenabled = false\n")
    brightrun("datasets", "add", str(ROOT / "docs/examples/zubrowka.jsonl"), "--name", "zubrowka", "--wait", "--json")
    job = json.loads(
        brightrun(
            "jobs", "create", "--dataset", "zubrowka",
            "--set", "base_model=brightrun/smollm2-135m-instruct",
            "--set", "learning_rate=5e-4", "--set", "epochs=1", "--yes", "--json",
        )
    )["id"]  # fmt: skip
    done = json.loads(brightrun("jobs", "watch", job, "--json"))
    if done["status"] != "completed":
        sys.exit(f"the run did not complete: {done}")
    model = done["artifact_id"]
    adapter = HOME / "adapter"
    brightrun("models", "download", model, "--to", str(adapter), "--json")
    base = Path(
        run(PY, "-m", "brightrun_trainer", "make-smollm2-model", env={"PYTHONPATH": str(ROOT / "trainer")})
        .strip()
        .splitlines()[-1]
    )
    return model, adapter, base


def worker_turns(model: str, base: bool) -> tuple[list[dict], float]:
    """Both prompts as one `models chat --json` conversation (stdin lines), embedded: the
    worker starts for turn 1 and is warm for turn 2. The replies and the command's wall time."""
    args = ["models", "chat", model, "--max-new-tokens", str(N), "--json"]
    if base:
        args.append("--base")
    start = time.monotonic()
    out = brightrun(*args, stdin="".join(p + "\n" for p in PROMPTS))
    return jsonl(out), time.monotonic() - start


def bare_turns(base_dir: Path, adapter: Path, base: bool) -> tuple[float, list[dict]]:
    out = run(
        PY, str(ROOT / "bench/playground_bare.py"), str(base_dir), str(adapter), str(N),
        "base" if base else "adapter", *PROMPTS,
    )  # fmt: skip
    lines = jsonl(out)
    return lines[0]["load_seconds"], lines[1:]


def first_byte(args: list[str], env: dict | None = None) -> tuple[float, float]:
    """Seconds from starting `brightrun ARGS` to the first byte of its stdout, and to its end."""
    start = time.monotonic()
    p = subprocess.Popen(
        [BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    assert p.stdout is not None
    first = p.stdout.read(1)
    at = time.monotonic() - start
    rest, err = p.communicate()
    if p.returncode != 0 or not first:
        sys.exit(f"brightrun {' '.join(args)} failed: {err.decode()}")
    return at, time.monotonic() - start


def rate(reply: dict) -> float:
    return reply["tokens"] / reply["seconds"]


def speed_section(model: str, adapter: Path, base_dir: Path) -> dict:
    rows: dict[str, dict[str, list]] = {}
    for rep in range(REPS):
        for base in (False, True):
            which = "base" if base else "adapter"
            # Alternate which goes first, so neither always runs on a warmer or quieter machine.
            order = ("worker", "bare") if rep % 2 == 0 else ("bare", "worker")
            for side in order:
                r = rows.setdefault(f"{which}/{side}", {})
                if side == "worker":
                    turns, wall = worker_turns(model, base)
                    r.setdefault("load", []).append(turns[0]["load_seconds"])
                    r.setdefault("wall", []).append(wall)
                else:
                    load, turns = bare_turns(base_dir, adapter, base)
                    r.setdefault("load", []).append(load)
                for t, turn in enumerate(turns, 1):
                    r.setdefault(f"ttft{t}", []).append(turn["first_token_seconds"])
                    r.setdefault(f"rate{t}", []).append(rate(turn))
                    r.setdefault(f"tokens{t}", []).append(turn["tokens"])
                    r.setdefault(f"reply{t}", []).append(turn["reply"])
            print(f"rep {rep + 1}/{REPS} {which}: done", file=sys.stderr)
    return rows


def transport_section(model: str) -> dict:
    """One-shot `models chat --prompt` streaming to stdout: embedded (each command starts its
    own engine and worker: a cold start), then attached to a daemon whose worker is warm, over
    its Unix socket and over TCP with a token."""
    one_shot = ["models", "chat", model, "--prompt", PROMPTS[0], "--max-new-tokens", str(N)]
    out: dict[str, list] = {}
    for _ in range(REPS):
        first, total = first_byte(one_shot)
        out.setdefault("embedded", []).append((first, total))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        [BIN, "serve", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        sock = HOME / "state" / "engine.sock"
        for _ in range(300):
            if sock.exists():
                break
            time.sleep(0.1)
        token = json.loads(brightrun("tokens", "create", "--json"))["token"]
        tcp = {"BRIGHTRUN_TOKEN": token}
        engine = ["--engine", f"http://127.0.0.1:{port}"]
        warm = json.loads(brightrun(*one_shot, "--json"))  # starts the daemon's worker
        out["daemon_load"] = [warm["load_seconds"]]
        for _ in range(REPS):
            out.setdefault("unix", []).append(first_byte(one_shot))
            out.setdefault("tcp", []).append(first_byte(engine + one_shot, env=tcp))
            reply = json.loads(brightrun(*engine, *one_shot, "--json", env=tcp))
            out.setdefault("worker_ttft", []).append(reply["first_token_seconds"])
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    return out


def main() -> None:
    model, adapter, base_dir = train()
    print(f"model {model}; {REPS} repetitions, {N} new tokens, greedy", file=sys.stderr)
    rows = speed_section(model, adapter, base_dir)
    transport = transport_section(model)

    load = os.getloadavg()
    print(f"\nSmolLM2-135M-Instruct + a 1-epoch adapter, CPU, fp32, greedy, max_new_tokens {N}, medians of {REPS}")
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
    print("| answered with | side | turn 1 (cold): first token | turn 1 tokens/s | turn 2 (warm): first token | turn 2 tokens/s | tokens (1, 2) | load |")
    print("|---|---|---|---|---|---|---|---|")
    for which in ("adapter", "base"):
        for side in ("bare", "worker"):
            r = rows[f"{which}/{side}"]
            name = "bare transformers loop" if side == "bare" else "`models chat --json` (embedded)"
            print(
                f"| {which} | {name} | {median(r['ttft1']):.3f} s | {median(r['rate1']):.1f} | "
                f"{median(r['ttft2']):.3f} s | {median(r['rate2']):.1f} | "
                f"{median(r['tokens1']):.0f}, {median(r['tokens2']):.0f} | {median(r['load']):.1f} s |"
            )
    print()
    for which in ("adapter", "base"):
        w, b = rows[f"{which}/worker"], rows[f"{which}/bare"]
        same = all(x == y for x, y in zip(w["reply2"], b["reply2"])) and all(
            x == y for x, y in zip(w["reply1"], b["reply1"])
        )
        for t in (1, 2):
            ratio = median(w[f"rate{t}"]) / median(b[f"rate{t}"])
            print(
                f"{which}, turn {t}: worker / bare tokens/s = {ratio:.2f}x "
                f"({'met' if ratio >= 1.0 else 'not met'}: aim >= 1.0x); "
                f"first token {median(w[f'ttft{t}']) - median(b[f'ttft{t}']):+.3f} s against bare"
            )
        print(f"{which}: same replies as the bare loop: {'yes' if same else 'no'}")
        print(f"{which}: embedded conversation, both turns, wall time of the command: {median(w['wall']):.1f} s")
    print()
    print("| one-shot `models chat --prompt` (streamed) | first byte of the reply | whole command |")
    print("|---|---|---|")
    for key, name in (
        ("embedded", "embedded (cold: starts the engine and the worker)"),
        ("unix", "attached, Unix socket (warm worker)"),
        ("tcp", "attached, TCP with a token (warm worker)"),
    ):
        firsts = [f for f, _ in transport[key]]
        totals = [t for _, t in transport[key]]
        print(f"| {name} | {median(firsts):.3f} s | {median(totals):.2f} s |")
    print(
        f"\nthe warm worker's own first token in the TCP runs: {median(transport['worker_ttft']):.3f} s; "
        f"the daemon's worker loaded in {transport['daemon_load'][0]:.1f} s"
    )


if __name__ == "__main__":
    main()
