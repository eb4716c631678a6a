"""Driver of bench/inspect_stats.sh (run it through that script): `datasets inspect --stats` on a
~200 MB OpenAI-chat file against the trainer tokenizing the same file for training.

Two roles in one file:

- ``python3 bench/inspect_stats.py`` (stdlib only): writes the dataset, imports it
  (`datasets add --wait`, timed for context), runs `datasets inspect DATASET --model MODEL
  --stats --json` twice (the second is served from the engine's cache), then the baseline, and
  prints the figures as JSON lines and a summary;
- ``$PY bench/inspect_stats.py baseline FILE MAX_SEQ_LENGTH`` (the trainer's Python, PYTHONPATH
  = trainer/): the baseline, what a training run does to the file before it trains, in the
  run's order: ``data.load_dataset`` (runner.py's ``_read_dataset``, the default split), the
  import of ``train`` (torch, transformers, peft), ``train.resolve_base_model``,
  ``train.load_tokenizer``, ``encoding.prepare_tokenizer``, then ``train._encode`` (the run's
  ``encode_examples`` over the training and the validation examples). It prints one JSON
  object: phase times, examples, tokens after the cut, trained tokens, truncated and dropped.

Environment (set by inspect_stats.sh): BIN (the brightrun binary), PY (the trainer's Python),
BRIGHTRUN_HOME (a fresh home), WORK (a temp folder, deleted by the script), SIZE_MB, SEED.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

T_START = time.perf_counter()  # the baseline's clock starts with the interpreter's first line of ours

ROOT = Path(__file__).resolve().parent.parent
MODEL = "brightrun/smollm2-135m-instruct"

# --------------------------------------------------------------------------- the dataset

WORDS = """
the of and to a in is that for it as with was on be by this are or at from have an but not which
they you we all can their more one will has there been if would about so what when out up into
some them other than then its time only could new these two may first any like now use over
such make well also people way even because most through after where much good each those
should very how many just work year back used being made before see between both under never
same another know while last might great since against right still three long without small
part take system data model value file line number state point case group form order result
change process level problem service user test example question answer rule list table field
query request response server client error message event record report step plan cost price
team project product customer market design support policy method function class object type
string array index key map set loop branch commit build release version update install config
network memory storage disk cache thread queue lock signal buffer stream packet socket route
account payment invoice order shipping delivery address contract budget schedule meeting
patient doctor treatment symptom dose study sample trial risk effect analysis average measure
river mountain forest garden weather season winter summer city village country history story
book chapter author letter word sentence language grammar meaning translation note draft
recipe flour sugar butter oven minute hour temperature bowl pan salt water milk egg cheese
simple clear quick careful exact early late large short high low full empty open close
important different possible available common general specific useful likely certain recent
explain describe compare check write read find keep start stop follow include provide allow
consider require return create remove replace handle improve reduce increase prepare share
however therefore instead usually often always sometimes probably perhaps almost already
first second third next finally also again together around inside outside below above
""".split()

NON_ASCII = (
    "café naïve résumé Zürich São Kraków Ærø 東京 北京 Москва données Straße über mañana façade "
    "coöperate π – … € ½ déjà Ωmega Español Übersicht çà 설명 データ"
).split()

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a concise assistant. Answer in as few words as the question allows.",
    "You are a senior software engineer who reviews code and explains the reasons behind each change.",
    "You are a friendly customer support agent for an online shop. Be polite and precise about orders, "
    "refunds and delivery times.",
    "You are a careful medical information assistant. You do not diagnose; you explain and suggest seeing a doctor.",
    "You are a tutor for high school students. Explain step by step and check understanding with a question.",
    "You are a travel planner. Suggest itineraries with times, costs and alternatives.",
    "You are an assistant that answers in Markdown, with headings and bullet lists where they help.",
    "You are a data analyst. Show the reasoning behind every number you give.",
    "You are a cooking assistant. Give quantities in grams and temperatures in Celsius.",
    "You are a legal information assistant. You explain general principles and never give legal advice.",
    "You are a writing coach who edits drafts for clarity and tone.",
]

USER_OPENERS = [
    "Can you explain", "How do I", "What is the difference between", "Please write", "Why does",
    "I need help with", "Could you check", "Summarise", "Is it possible to", "What should I do about",
]


def _sentence(rng: random.Random, n: int, question: bool = False) -> str:
    words = rng.choices(WORDS, k=n)
    for i in range(n):
        r = rng.random()
        if r < 0.02:
            words[i] = rng.choice(NON_ASCII)
        elif r < 0.04:
            words[i] = str(rng.randint(0, 5000))
        elif r < 0.05:
            words[i] = words[i] + ","
    words[0] = words[0].capitalize()
    end = "?" if question else rng.choices((".", ".", ".", "!", ":", ";"), k=1)[0]
    return " ".join(words) + end


def _paragraph(rng: random.Random, n_words: int, question: bool = False) -> str:
    out, left = [], n_words
    while left > 0:
        n = min(left, rng.randint(5, 22))
        out.append(_sentence(rng, max(n, 2), question and left <= n))
        left -= n
    return " ".join(out)


def _code(rng: random.Random) -> str:
    name, arg = rng.choice(WORDS), rng.choice(WORDS)
    lines = [f"def {name}_{rng.randint(1, 99)}({arg}, limit={rng.randint(1, 512)}):"]
    for _ in range(rng.randint(2, 9)):
        w = rng.choice(WORDS)
        lines.append(rng.choice((
            f"    {w} = {arg}.get(\"{rng.choice(WORDS)}\", {rng.randint(0, 99)})",
            f"    if {w} > limit:\n        return None",
            f"    print(f\"{{{arg}!r}}\\t{w}\")",
            f"    {arg} = [{w} for {w} in {arg} if {w}]",
        )))  # fmt: skip
    lines.append(f"    return {arg}")
    return "```python\n" + "\n".join(lines) + "\n```"


def _words(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(2, min(cap, int(rng.lognormvariate(0, sigma) * median)))


def _user(rng: random.Random) -> str:
    n = _words(rng, 12, 0.9, 900)
    body = _paragraph(rng, n, question=True)
    text = rng.choice(USER_OPENERS) + " " + body[0].lower() + body[1:]
    if rng.random() < 0.08:
        text += "\n\n" + _code(rng)
    return text


def _assistant(rng: random.Random) -> str:
    long = rng.random() < 0.025  # a long-form answer now and then: the tail that max_seq_length cuts
    n = _words(rng, 360 if long else 28, 0.6 if long else 0.9, 2400)
    parts, left = [], n
    while left > 0:
        k = min(left, rng.randint(25, 90))
        r = rng.random()
        if r < 0.12:
            parts.append("\n".join(f"- {_sentence(rng, rng.randint(3, 12))}" for _ in range(rng.randint(2, 6))))
        elif r < 0.18:
            parts.append(_code(rng))
        else:
            parts.append(_paragraph(rng, k))
        left -= k
    return "\n\n".join(parts)


def _record(rng: random.Random) -> dict:
    system = rng.choice(SYSTEM_PROMPTS)
    if rng.random() < 0.3:
        system += " " + _sentence(rng, rng.randint(6, 20))
    messages = [{"role": "system", "content": system}]
    for _ in range(rng.choices((1, 2, 3, 4, 5), weights=(46, 28, 15, 7, 4))[0]):
        messages.append({"role": "user", "content": _user(rng)})
        messages.append({"role": "assistant", "content": _assistant(rng)})
    return {"messages": messages}


def write_dataset(path: Path, size_bytes: int, seed: int) -> int:
    """Records until the file reaches ``size_bytes``; deterministic for a seed. 10 % of the lines
    are written with ``\\uXXXX`` escapes, as Python's ``json.dumps`` writes them by default."""
    rng = random.Random(seed)
    written = records = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < size_bytes:
            line = json.dumps(_record(rng), ensure_ascii=rng.random() < 0.1) + "\n"
            out.write(line)
            written += len(line.encode("utf-8"))
            records += 1
    return records


# --------------------------------------------------------------------------- the baseline


def baseline(file: str, max_seq_length: int) -> None:
    """What a training run does to the file before it trains (runner.py, then train.train)."""
    phases = {}
    t = time.perf_counter()
    from brightrun_trainer.data import load_dataset

    dataset = load_dataset(file, seed=42, validation_split=0.1, use_validation=True)
    phases["load_dataset"] = time.perf_counter() - t
    t = time.perf_counter()
    from brightrun_trainer import train
    from brightrun_trainer.encoding import IGNORE_INDEX, prepare_tokenizer

    train.transformers.utils.logging.set_verbosity_warning()
    train.transformers.utils.logging.disable_progress_bar()
    phases["import_train"] = time.perf_counter() - t
    t = time.perf_counter()
    tokenizer = train.load_tokenizer(train.resolve_base_model(MODEL), MODEL)
    prepare_tokenizer(tokenizer)
    phases["tokenizer"] = time.perf_counter() - t

    class Hp:
        pass

    class Emitter:
        def __init__(self):
            self.lines = []

        def warning(self, text):
            self.lines.append(("warning", text))

        def info(self, text):
            self.lines.append(("info", text))

    hp, emitter = Hp(), Emitter()
    hp.max_seq_length = max_seq_length
    t = time.perf_counter()
    train_set, validation_set = train._encode(tokenizer, dataset, hp, emitter)
    phases["encode"] = time.perf_counter() - t
    encoded = list(train_set) + list(validation_set)
    tokens = sum(len(e.input_ids) for e in encoded)
    # trained as the inspector counts them (labels are shifted: position 0 is never a target)
    trained = sum(sum(1 for label in e.labels[1:] if label != IGNORE_INDEX) for e in encoded)
    truncated = re.search(r"(\d+) examples are longer than", " ".join(t for _, t in emitter.lines))
    dropped = re.search(r"(\d+) examples were dropped", " ".join(t for _, t in emitter.lines))
    import resource

    print(json.dumps({
        "records": dataset.total_records,
        "train": len(dataset.train),
        "validation": len(dataset.validation),
        "skipped_records": dataset.skipped_count,
        "examples": len(encoded),
        "tokens": tokens,
        "trained_tokens": trained,
        "truncated": int(truncated.group(1)) if truncated else 0,
        "dropped": int(dropped.group(1)) if dropped else 0,
        "longest_kept": max(len(e.input_ids) for e in encoded),
        "phases": phases,
        "seconds_in_python": time.perf_counter() - T_START,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "emitter": emitter.lines,
    }))  # fmt: skip


# --------------------------------------------------------------------------- the driver

BIN = os.environ.get("BIN", "")
PY = os.environ.get("PY", "")
MB = 1_000_000


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def timed(args: list[str], env: dict | None = None, report: Path | None = None) -> tuple[float, str, dict]:
    """Runs ``args`` under ``/usr/bin/time -v`` (report in ``report``); wall seconds by our own
    clock, stdout, and the report's figures."""
    report = report or Path(os.environ["WORK"]) / "time.txt"
    start = time.monotonic()
    out = subprocess.run(
        ["/usr/bin/time", "-v", "-o", str(report), *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    wall = time.monotonic() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return wall, out.stdout, time_report(report)


def time_report(path: Path) -> dict:
    text = path.read_text()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return {
        "max_rss_mib": int(rss.group(1)) / 1024,
        "user_s": float(user.group(1)),
        "sys_s": float(system.group(1)),
        "wall_s": seconds,
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def emit(name: str, **figures) -> None:
    print(json.dumps({"measure": name, **figures}), flush=True)


def main() -> None:
    work = Path(os.environ["WORK"])
    size_mb, seed = int(os.environ.get("SIZE_MB", "200")), int(os.environ.get("SEED", "29"))
    env_py = {"PYTHONPATH": str(ROOT / "trainer")}
    emit("machine", cpu=_cpu(), cores=os.cpu_count(), loadavg=loadavg(), bin=BIN)

    # The dataset.
    data = work / "chats.jsonl"
    log(f"writing {size_mb} MB of OpenAI-chat JSONL (seed {seed})...")
    t = time.monotonic()
    records = write_dataset(data, size_mb * MB, seed)
    size = data.stat().st_size
    emit("dataset", file=str(data), bytes=size, records=records, seconds=round(time.monotonic() - t, 1))

    # Warm-up, not measured: SmolLM2 built (from its GGUF the first time on a machine), the
    # trainer's imports and the tokenizer read once through the binary on a 3-record dataset.
    log("warm-up: make-smollm2-model, then an inspect of a tiny dataset")
    t = time.monotonic()
    subprocess.run([PY, "-m", "brightrun_trainer", "make-smollm2-model"], check=True,
                   capture_output=True, env={**os.environ, **env_py})  # fmt: skip
    smol = time.monotonic() - t
    tiny = work / "tiny.jsonl"
    with open(data, encoding="utf-8") as src, open(tiny, "w", encoding="utf-8") as dst:
        for _ in range(3):
            dst.write(src.readline())
    t = time.monotonic()
    tiny_id = json.loads(brightrun("datasets", "add", str(tiny), "--name", "tiny", "--wait", "--json"))["id"]
    brightrun("datasets", "inspect", tiny_id, "--model", MODEL, "--stats", "--json")
    emit("warm-up", make_smollm2_s=round(smol, 1), tiny_inspect_s=round(time.monotonic() - t, 1))

    # datasets add --wait (context: the validator).
    log("datasets add --wait ...")
    wall, out, rep = timed([BIN, "datasets", "add", str(data), "--name", "chats", "--wait", "--json"])
    added = json.loads(out)
    dataset_id = added["id"]
    emit("datasets add --wait", wall_s=round(wall, 2), max_rss_mib=round(rep["max_rss_mib"], 1),
         user_s=rep["user_s"], sys_s=rep["sys_s"], loadavg=loadavg(),
         status=added.get("status"), sha256=added.get("sha256"), statistics={
             k: added["statistics"].get(k) for k in ("total_examples", "total_tokens", "tokens_exact",
             "tokens_p50", "tokens_p95", "tokens_max", "examples_over_max_seq_length", "max_seq_length")
         })  # fmt: skip

    # The inspector, cold (no cached reply): brightrun under time -v, and the trainer's Python
    # under time -v too (the wrapper named by BRIGHTRUN_TRAINER_PYTHON).
    trainer_report = work / "trainer-time.txt"
    trainer_stderr = work / "trainer-stderr.txt"
    wrapper = work / "python-wrapper.sh"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        f'exec /usr/bin/time -v -o "{trainer_report}" "{PY}" "$@" 2> >(tee -a "{trainer_stderr}" >&2)\n'
    )
    wrapper.chmod(0o755)
    inspect = [BIN, "datasets", "inspect", dataset_id, "--model", MODEL, "--stats", "--json"]
    log("datasets inspect --stats (cold) ...")
    load_before = loadavg()
    wall, out, rep = timed(inspect, env={"BRIGHTRUN_TRAINER_PYTHON": str(wrapper)})
    reply = json.loads(out)
    stats = reply["stats"]
    trainer = time_report(trainer_report)
    progress = [line for line in trainer_stderr.read_text().splitlines() if line.startswith("inspect: ")]
    emit("inspect --stats", wall_s=round(wall, 2), records_per_s=round(records / wall, 1),
         mb_per_s=round(size / MB / wall, 3), brightrun_max_rss_mib=round(rep["max_rss_mib"], 1),
         trainer_max_rss_mib=round(trainer["max_rss_mib"], 1), trainer_wall_s=trainer["wall_s"],
         trainer_user_s=trainer["user_s"], trainer_sys_s=trainer["sys_s"],
         last_progress=progress[-1] if progress else None, progress_lines=len(progress),
         loadavg_before=load_before, loadavg_after=loadavg(), stats=stats,
         warnings=[(w["code"], w.get("count")) for w in reply.get("warnings", [])])  # fmt: skip

    # The second look: the engine's cache (the trainer must not run: its report must not appear).
    trainer_report.unlink()
    log("datasets inspect --stats (cached) ...")
    walls = []
    for _ in range(3):
        w, out2, _ = timed(inspect, env={"BRIGHTRUN_TRAINER_PYTHON": str(wrapper)})
        walls.append(round(w, 3))
    emit("inspect --stats, cached", wall_s=walls, trainer_ran=trainer_report.exists(),
         same_stats=json.loads(out2)["stats"] == stats)  # fmt: skip

    # The baseline: the trainer tokenizing the file for training, same max_seq_length.
    log(f"baseline: the run's load_dataset + tokenizer + encode_examples, max_seq_length {stats['max_seq_length']} ...")
    load_before = loadavg()
    wall, out, rep = timed([PY, str(Path(__file__).resolve()), "baseline", str(data), str(stats["max_seq_length"])], env=env_py)
    base = json.loads(out.strip().splitlines()[-1])
    emit("baseline", wall_s=round(wall, 2), records_per_s=round(records / wall, 1),
         mb_per_s=round(size / MB / wall, 3), max_rss_mib=round(rep["max_rss_mib"], 1),
         user_s=rep["user_s"], sys_s=rep["sys_s"], loadavg_before=load_before, loadavg_after=loadavg(),
         **{k: v for k, v in base.items() if k != "emitter"}, emitter=base["emitter"])  # fmt: skip

    # Agreement.
    checks = {
        "tokens": (stats["tokens"], base["tokens"]),
        "trained_tokens": (stats["trained_tokens"], base["trained_tokens"]),
        "examples": (stats["examples"], base["examples"]),
        "over_max_seq_length": (stats["over_max_seq_length"], base["truncated"]),
        "skipped": (stats["skipped"], base["dropped"] + base["skipped_records"]),
    }
    emit("agreement", **{k: {"inspector": a, "baseline": b, "equal": a == b} for k, (a, b) in checks.items()})
    print(
        f"inspect --stats: {wall_inspect(stats, records, size)}; baseline {base['tokens']:,} tokens; "
        f"tokens {'EQUAL' if stats['tokens'] == base['tokens'] else 'DIFFER'}",
        file=sys.stderr,
    )


def wall_inspect(stats: dict, records: int, size: int) -> str:
    return f"{stats['examples']:,} examples of {records:,} records, {stats['tokens']:,} tokens"


def brightrun(*args: str) -> str:
    out = subprocess.run([BIN, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"brightrun {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "baseline":
        baseline(sys.argv[2], int(sys.argv[3]))
    else:
        main()
