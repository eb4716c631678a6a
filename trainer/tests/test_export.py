"""Export mode (``models export``): merged, GGUF and GGUF LoRA exports of a random LoRA adapter
on SmolLM2-135M-Instruct, each checked here independently of the trainer's own check (the
merged folder loaded without PEFT, the GGUF continued by llama.cpp, the Modelfile's template
rendered by Go's text/template), then the refusals, a stop and a failed check.

The SmolLM2 runs share one adapter and one GGUF f16 export (module fixtures); each run is in
process except the stop, which needs a real SIGTERM.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import re
import shutil
import signal
import subprocess
import tarfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import TINY_MODEL_ID, make_spec, run_in_process, run_trainer, write_spec

from brightrun_trainer import SMOLLM2_MODEL_ID
from brightrun_trainer import export as export_module
from brightrun_trainer import llama_tools
from brightrun_trainer.errors import InfrastructureError
from brightrun_trainer.ollama import TemplateNotDerivable, derive_pieces, go_template, render_pieces

TRAINER_DIR = Path(__file__).resolve().parents[1]
GO_HARNESS = Path(__file__).parent / "fixtures" / "ollama_template" / "main.go"
EXPORT_FIELDS = {
    "version", "format", "dtype", "quantize", "passed", "checked", "tolerance", "max_abs_diff", "agreement",
    "template_matches", "tokens_match", "prompts", "files", "seconds", "llama_cpp", "ollama",
}  # fmt: skip
PROMPT_FIELDS = {"prompt", "expected", "got", "agreed_tokens", "of", "max_abs_diff", "passed"}
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
CONVERSATIONS = (
    [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Hi there"},
     {"role": "assistant", "content": "Arr, hello!"}, {"role": "user", "content": "Where is the treasure?"}],
    [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! {{ not a template }}"},
     {"role": "user", "content": "Tell me about \"quotes\"\nand newlines."}],
    [{"role": "user", "content": "What is the capital of France?"}],
)  # fmt: skip


# ------------------------------------------------------------------------ pure helpers


def test_allowed_names_are_the_protocols():
    allowed = export_module.allowed_name
    assert allowed("model.safetensors", "merged", 1) and allowed("model-00002-of-00003.safetensors", "merged", 3)
    assert not allowed("model-00002-of-00003.safetensors", "merged", 2)  # more shards than presigned
    assert not allowed("model-00001-of-00002.gguf", "merged", 2) and not allowed("README.md", "merged", 2)
    assert all(allowed(name, "merged", 1) for name in export_module.MERGED_FILES)
    assert allowed("model.gguf", "gguf", 1) and allowed("Modelfile", "gguf", 1) and allowed("model-00001-of-00004.gguf", "gguf", 4)
    assert not allowed("config.json", "gguf", 1) and not allowed("adapter.gguf", "gguf", 1)
    assert allowed("adapter.gguf", "gguf-lora", 1) and not allowed("model-00001-of-00002.gguf", "gguf-lora", 2)


def test_shards_are_counted_as_the_writers_fill_them():
    assert export_module.count_shards([40, 40, 40], 100) == 2
    assert export_module.count_shards([60, 60, 60], 100) == 3
    assert export_module.count_shards([], 100) == 0
    assert export_module.gguf_tensor_bytes([(10,), (4, 8)], "f16") == [40, 64]
    assert export_module.gguf_tensor_bytes([(32, 32)], "q8_0") == [1088]


def test_continuations_agree_exactly_or_part_at_a_near_tie():
    answer = export_module._Answer
    expected = answer([5, 6, 7], None, [(5, 9, 2.0), (6, 8, 0.1), (7, 1, 3.0)])
    assert export_module.first_difference([5, 6, 7], [5, 6, 7]) is None
    assert export_module.first_difference([5, 6, 2], [5, 6, 7, 1]) == 2
    assert export_module.first_difference([5, 6], [5, 6, 7]) == 2
    assert export_module._agrees(expected, answer([5, 6, 7], None, []))
    assert export_module._agrees(expected, answer([5, 8, 3], None, []))  # the runner-up, 0.1 behind
    assert not export_module._agrees(expected, answer([5, 4, 3], None, []))  # not the runner-up
    assert not export_module._agrees(expected, answer([9, 6, 7], None, []))  # a 2.0 gap
    assert not export_module._agrees(expected, answer([5, 6], None, []))  # stopped early


def test_a_failed_gguf_check_names_its_figures():
    settings = type("Settings", (), {"format": "gguf", "quantize": None, "dtype": "f16"})()
    document = {
        "checked": "greedy", "agreement": 1 / 3, "tolerance": 0.5, "template_matches": True, "tokens_match": False,
        "prompts": [{"agreed_tokens": 8, "of": 8, "passed": True}, {"agreed_tokens": 2, "of": 8, "passed": False},
                    {"agreed_tokens": 5, "of": 8, "passed": True}],
    }  # fmt: skip
    assert export_module.failure_reason(settings, document) == (
        "the GGUF export failed its check: 1 of 3 prompts agreed with transformers (llama.cpp tokenizes the "
        "rendered prompts differently; prompt 2 differs at token 3 of 8, not at a near tie)"
    )
    settings.quantize, document["tokens_match"], document["tolerance"] = "q8_0", True, 0.9
    assert export_module.failure_reason(settings, document).endswith(
        "1 of 3 prompts agreed with transformers (2 of 3 agreed or parted at a near tie, below the q8_0 floor 0.90)"
    )


def test_a_full_disk_and_a_refusing_converter_are_told_apart(monkeypatch):
    from brightrun_trainer.errors import TrainingError

    with pytest.raises(InfrastructureError, match="^no space left on device while writing model.safetensors$"):
        with export_module.writing("model.safetensors"):
            raise OSError(errno.ENOSPC, "No space left on device")
    outputs = {
        "OSError: [Errno 28] No space left on device": (InfrastructureError, "no space left on device while writing model.gguf"),
        "NotImplementedError: BPE pre-tokenizer was not recognized": (TrainingError, "llama.cpp cannot convert this model: NotImplementedError: BPE pre-tokenizer was not recognized"),
        "ERROR:hf-to-gguf:Model FooForCausalLM is not supported": (TrainingError, "llama.cpp cannot convert this model: Model FooForCausalLM is not supported"),
        "ModuleNotFoundError: No module named 'sentencepiece'": (InfrastructureError, "llama.cpp's converter is missing a package: ModuleNotFoundError: No module named 'sentencepiece'"),
    }  # fmt: skip
    for line, (kind, reason) in outputs.items():
        monkeypatch.setattr(llama_tools, "run_child", lambda command, cwd=None, env=None: llama_tools.ChildResult(1, ("INFO:hf-to-gguf:Loading", line, "")))
        with pytest.raises(kind) as error:
            export_module._run_converter(["convert"], "model.gguf", Path("."))
        assert type(error.value) is kind and error.value.reason == reason


def _jinja(template: str, bos: str = "<s>"):
    """A chat template rendered as transformers renders it (trim_blocks, lstrip_blocks)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    compiled = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)
    return lambda messages, prompt: compiled.render(messages=messages, add_generation_prompt=prompt, bos_token=bos)


LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
#: Numbers its turns: no per-role pieces can say that.
NUMBERED = "{% for m in messages %}{{ loop.index }}. {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def test_pieces_render_conversations_as_the_chat_template_does():
    from brightrun_trainer.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    templates = {
        "tiny ChatML": lambda messages, prompt: tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt),
        "Llama 3": _jinja(LLAMA3, bos="<|begin_of_text|>"),
    }
    for name, render in templates.items():
        pieces = derive_pieces(render)
        for conversation in CONVERSATIONS:
            assert render_pieces(pieces, conversation) == render(conversation, True), name
    llama3 = derive_pieces(templates["Llama 3"])
    assert llama3.no_system == "<|begin_of_text|>" and llama3.before["system"].startswith("<|begin_of_text|>")


def test_a_template_that_is_not_per_message_is_refused():
    with pytest.raises(TemplateNotDerivable):
        derive_pieces(_jinja(NUMBERED))


def test_literal_text_that_go_would_read_is_quoted():
    pieces = derive_pieces(_jinja("{% for m in messages %}{{ '{{' + m['role'] + '\"\"\"' + m['content'] + '}}' }}{% endfor %}{% if add_generation_prompt %}>{% endif %}"))
    template = go_template(pieces)
    assert '{{ "{{user\\"\\"\\"" }}' in template and '"""' not in template


# ------------------------------------------------------------------------ llama.cpp's tools


def test_the_sdist_is_found_on_json_and_html_index_pages():
    name, page = llama_tools.SDIST_NAME, "https://mirror.example/simple/llama-cpp-python/"
    files = {"files": [{"filename": "other.whl", "url": "x"}, {"filename": name, "url": f"https://files.example/p/{name}#sha256=1"}]}
    assert llama_tools.sdist_url(page, ("application/vnd.pypi.simple.v1+json", json.dumps(files).encode())) == f"https://files.example/p/{name}#sha256=1"
    html = f'<a href="../../packages/ab/{name}#sha256=2">{name}</a><a href="../../packages/cd/x.tar.gz">x</a>'.encode()
    assert llama_tools.sdist_url(page, ("text/html", html)) == f"https://mirror.example/packages/ab/{name}#sha256=2"
    with pytest.raises(InfrastructureError, match=f"does not list {re.escape(name)}"):
        llama_tools.sdist_url(page, ("text/html", b"<html></html>"))


def test_without_the_network_the_failure_names_what_could_not_be_fetched(tmp_path, monkeypatch):
    monkeypatch.setattr(llama_tools, "tools_folder", lambda: tmp_path / "share" / "llama.cpp")
    monkeypatch.setattr("brightrun_trainer.transfer.FIRST_BACKOFF_SECONDS", 0.0)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # the discard port: refused
    with pytest.raises(InfrastructureError) as error:
        llama_tools.ensure_llama_cpp()
    assert error.value.reason.startswith("reading the package index's page of llama-cpp-python (http://127.0.0.1:9/simple/llama-cpp-python/) failed")


def test_the_converter_is_extracted_from_the_sdists_vendored_llama_cpp(tmp_path):
    root = llama_tools._SDIST_ROOT
    members = {
        f"{root}convert_hf_to_gguf.py": b"hf", f"{root}convert_lora_to_gguf.py": b"lora",
        f"{root}conversion/__init__.py": b"c", f"{root}gguf-py/gguf/__init__.py": b"g",
        f"{root}src/llama.cpp": b"not needed", f"{root}conversion/../../evil.py": b"no",
    }  # fmt: skip
    sdist = tmp_path / llama_tools.SDIST_NAME
    with tarfile.open(sdist, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    folder = tmp_path / "share" / "llama.cpp-x"
    folder.parent.mkdir()
    llama_tools.extract_converter(sdist, folder)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [".complete", "conversion/__init__.py", "convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "gguf-py/gguf/__init__.py"]
    assert [p.name for p in folder.parent.iterdir()] == ["llama.cpp-x"]  # no staging left behind


def test_requirements_export_pins_what_llama_tools_installs():
    text = (TRAINER_DIR / "requirements-export.txt").read_text()
    assert llama_tools.SENTENCEPIECE in text.splitlines()
    assert llama_tools.SDIST_SHA256 in text and llama_tools.SDIST_NAME in text


# ------------------------------------------------------------------------ SmolLM2 exports


@pytest.fixture(scope="module")
def tools():
    """llama.cpp's converter and llama_cpp, installed on first use (scripts/trainer-env.sh does it)."""
    return llama_tools.ensure_llama_cpp()


@pytest.fixture(scope="module")
def smol_adapter(tmp_path_factory, isolated_cache) -> Path:
    """A random, non-zero rank-8 LoRA on q_proj and v_proj of SmolLM2 (seeded)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from brightrun_trainer.smollm2 import ensure_smollm2

    folder = tmp_path_factory.mktemp("smol-adapter") / "adapter"
    base = AutoModelForCausalLM.from_pretrained(ensure_smollm2())
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        get_peft_model(base, config).save_pretrained(folder)
    return folder


def export_spec(tmp_path: Path, adapter: dict, output: dict | None = None, base: str = SMOLLM2_MODEL_ID, **fields) -> Path:
    """A spec exporting ``adapter`` (a ``{"dir"}`` or ``{"urls"}`` object); no dataset."""
    document = {
        "model": {"id": "m-id", "label": "random", "base_model": base, "adapter": adapter},
        "format": "gguf", "dtype": "f16", "quantize": None, "ollama": False, "name": "random-smol",
        "system_prompt": None, "max_shard_bytes": 4_000_000_000, "max_shards": 2,
        "verify": {"prompts": None, "tokens": 8},
    }  # fmt: skip
    document.update(fields)
    spec = make_spec(tmp_path, {"path": "/unused.jsonl"}, base_model=base, export=document)
    del spec["dataset"]
    spec["output"] = output or {"dir": str(tmp_path / "out")}
    return write_spec(tmp_path / "export.json.spec", spec)


def exported(run, folder: Path) -> dict:
    """The run's export.json, once the events and the files are as the protocol says."""
    assert run.returncode == 0, run.describe()
    assert run.stages == ["initializing", "saving", "evaluating", "completed"]
    assert run.events[-1]["type"] == "done" and not run.of_type("error")
    assert all(value is None for value in run.events[-1]["summary"].values())
    (artifact,) = run.of_type("artifact")
    assert artifact["dir"] == str(folder.resolve())
    on_disk = sorted(p.name for p in folder.iterdir())
    assert sorted(entry["path"] for entry in artifact["files"]) == on_disk  # nothing else, no staging left
    for entry in artifact["files"]:
        path = folder / entry["path"]
        assert entry["size"] == path.stat().st_size and entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert artifact["files"][-1]["path"] == "export.json"
    document = json.loads((folder / "export.json").read_text())
    assert set(document) == EXPORT_FIELDS and document["passed"] is True
    assert document["files"] == artifact["files"][:-1]
    assert all(set(entry) == PROMPT_FIELDS for entry in document["prompts"])
    assert len(document["prompts"]) == 3 and document["prompts"][0]["prompt"] == "What is the capital of France?"
    return document


@pytest.fixture(scope="module")
def adapted(smol_adapter):
    """SmolLM2 + the adapter (PEFT, unmerged, fp32) and the first built-in prompt's token ids."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from brightrun_trainer.smollm2 import ensure_smollm2

    folder = ensure_smollm2()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder), str(smol_adapter)).eval()
    text = tokenizer.apply_chat_template(list(export_module.VERIFY_PROMPTS[0]), tokenize=False, add_generation_prompt=True)
    return model, torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])


def next_token_logits(adapted, model=None):
    """``(logits of model, of base + adapter, of the base alone)`` after the first built-in prompt."""
    import torch

    peft_model, ids = adapted
    with torch.no_grad():
        with peft_model.disable_adapter():
            base = peft_model(ids).logits[0, -1]
        reference = peft_model(ids).logits[0, -1]
        logits = model(ids).logits[0, -1] if model is not None else None
    return logits, reference, base


def test_a_merged_f32_export_loads_without_peft_and_answers_as_base_plus_adapter(tmp_path, smol_adapter, adapted):
    import torch
    from transformers import AutoModelForCausalLM

    run = run_in_process(export_spec(tmp_path, {"dir": str(smol_adapter)}, format="merged", dtype="f32"))
    folder = tmp_path / "out"
    document = exported(run, folder)
    assert (document["format"], document["dtype"], document["quantize"], document["checked"]) == ("merged", "f32", None, "logits")
    assert document["tolerance"] == 1e-3 and 0 <= document["max_abs_diff"] <= 1e-3
    assert all(entry["passed"] and entry["max_abs_diff"] <= 1e-3 for entry in document["prompts"])
    assert document["llama_cpp"] is None and document["ollama"] is None and document["agreement"] == 1.0
    assert document["template_matches"] is None and document["tokens_match"] is None
    assert document["seconds"]["merge"] > 0 and document["seconds"]["check"] > 0 and document["seconds"]["convert"] is None
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names
    assert not names & {"adapter_config.json", "adapter_model.safetensors"}
    assert json.loads((folder / "config.json").read_text())["use_cache"] is True

    merged = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert not hasattr(merged, "peft_config")
    logits, reference, base = next_token_logits(adapted, merged)
    assert float((logits - reference).abs().max()) <= 1e-3
    assert float((reference - base).abs().max()) > 0.05  # the adapter is in there: it changes the logits


def test_a_sharded_f16_merge_of_an_adapter_from_urls_is_uploaded_by_presigned_puts(tmp_path, smol_adapter, adapted):
    import torch
    from test_end_to_end import _ObjectStore
    from transformers import AutoModelForCausalLM

    _ObjectStore.objects = {f"/adapters/{name}": (smol_adapter / name).read_bytes() for name in ADAPTER_FILES}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ObjectStore)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_port}"
    names = [*export_module.MERGED_FILES, "export.json", "model.safetensors", "model.safetensors.index.json"]
    names += [f"model-{i:05d}-of-{n:05d}.safetensors" for n in range(1, 5) for i in range(1, n + 1)]
    output = {"presigned_put": {name: f"{host}/out/{name}?X-Amz-Signature=secret" for name in names}}
    adapter = {"urls": {name: f"{host}/adapters/{name}?X-Amz-Signature=secret" for name in ADAPTER_FILES}}
    try:
        run = run_in_process(export_spec(tmp_path, adapter, output, format="merged", dtype="f16", max_shard_bytes=100_000_000, max_shards=4))
    finally:
        server.shutdown()
    assert run.returncode == 0, run.describe()
    assert all("secret" not in json.dumps(event) for event in run.events)
    (artifact,) = run.of_type("artifact")
    uploaded = [path[len("/out/"):] for path in _ObjectStore.objects if path.startswith("/out/")]
    assert uploaded[-1] == "export.json" and sorted(uploaded) == sorted(entry["path"] for entry in artifact["files"])
    shards = sorted(name for name in uploaded if name.endswith(".safetensors"))
    assert shards == [f"model-{i:05d}-of-00003.safetensors" for i in (1, 2, 3)] and "model.safetensors.index.json" in uploaded
    for entry in artifact["files"]:
        body = _ObjectStore.objects[f"/out/{entry['path']}"]
        assert entry["size"] == len(body) <= 100_000_000 and entry["sha256"] == hashlib.sha256(body).hexdigest()
    document = json.loads(_ObjectStore.objects["/out/export.json"])
    assert document["passed"] and document["dtype"] == "f16"
    assert 0 < document["max_abs_diff"] <= export_module.TOLERANCES["f16"] == document["tolerance"]
    logs = [event["message"] for event in run.of_type("log")]
    assert "downloading the adapter of random (2 files)" in logs
    assert any(m.startswith("this export has no ") and "model.safetensors," in m for m in logs), logs

    folder = tmp_path / "downloaded"
    folder.mkdir()
    for name in uploaded:
        (folder / name).write_bytes(_ObjectStore.objects[f"/out/{name}"])
    logits, reference, _ = next_token_logits(adapted, AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32))
    assert float((logits - reference).abs().max()) <= export_module.TOLERANCES["f16"]


@pytest.fixture(scope="module")
def gguf_f16(tmp_path_factory, smol_adapter, tools):
    """One f16 GGUF export with its Modelfile: ``(run, folder)``."""
    root = tmp_path_factory.mktemp("gguf-f16")
    run = run_in_process(export_spec(root, {"dir": str(smol_adapter)}, ollama=True, system_prompt="Answer briefly."))
    return run, root / "out"


def test_a_gguf_f16_export_continues_the_prompts_as_transformers_does(gguf_f16, adapted):
    import numpy as np
    import torch
    from llama_cpp import Llama

    run, folder = gguf_f16
    document = exported(run, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["Modelfile", "export.json", "model.gguf"]
    assert (document["format"], document["dtype"], document["checked"], document["llama_cpp"]) == ("gguf", "f16", "greedy", "0.3.36")
    assert document["tolerance"] == export_module.TIE_MARGIN
    assert document["template_matches"] is True and document["tokens_match"] is True
    assert document["agreement"] == 1.0 and all(p["agreed_tokens"] == p["of"] > 0 for p in document["prompts"])
    assert document["prompts"][0]["got"].startswith("The capital of France is Paris")
    assert document["ollama"] == {"command": "ollama create random-smol -f Modelfile"}
    assert document["seconds"]["convert"] > 0 and document["seconds"]["quantize"] is None
    logs = [event["message"] for event in run.of_type("log")]
    assert any(m.startswith("converting the merged model to GGUF (f16) with llama.cpp's convert_hf_to_gguf.py") for m in logs)

    from brightrun_trainer.smollm2 import ensure_smollm2

    model, ids = adapted
    with torch.no_grad():
        expected = model.generate(ids, max_new_tokens=6, do_sample=False, eos_token_id=2, pad_token_id=2)[0, ids.shape[1]:].tolist()
    llm = Llama(str(folder / "model.gguf"), n_ctx=128, logits_all=True, verbose=False)
    assert llm.metadata["general.name"] == "random-smol"
    assert llm.metadata["tokenizer.chat_template"] == (ensure_smollm2() / "chat_template.jinja").read_text()
    llm.eval(ids[0].tolist())
    got = []
    while len(got) < len(expected):
        got.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        llm.eval([got[-1]])
    llm.close()
    assert got == expected


def go_render(template: str, messages: list[dict[str, str]]) -> str:
    """The template executed by Go's text/template with Ollama's data (tests/fixtures/ollama_template)."""
    if shutil.which("go") is None:
        pytest.fail("the Go toolchain (`go`) is not on PATH: install golang-go (scripts/test.sh does) to check the Modelfile's template")
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    request = json.dumps({"template": template, "messages": messages, "system": system})
    done = subprocess.run(["go", "run", str(GO_HARNESS)], input=request, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_modelfiles_template_renders_conversations_as_the_chat_template_does(gguf_f16):
    from transformers import AutoTokenizer

    from brightrun_trainer.smollm2 import ensure_smollm2
    from brightrun_trainer.tiny_model import build_tokenizer

    run, folder = gguf_f16
    assert run.returncode == 0, run.describe()
    text = (folder / "Modelfile").read_text()
    assert text.startswith("# ollama create random-smol -f Modelfile\nFROM ./model.gguf\n")
    assert 'PARAMETER stop "<|im_end|>"\n' in text and text.endswith('SYSTEM """Answer briefly."""\n')
    template = re.search(r'^TEMPLATE """(.*?)"""$', text, re.S | re.M)[1]
    tokenizer = AutoTokenizer.from_pretrained(ensure_smollm2())
    for conversation in CONVERSATIONS:
        expected = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        assert go_render(template, conversation) == expected
    assert "You are a helpful AI assistant named SmolLM" in go_render(template, CONVERSATIONS[2])  # the template's default system turn
    tiny = build_tokenizer()
    tiny_template = go_template(derive_pieces(lambda m, p: tiny.apply_chat_template(m, tokenize=False, add_generation_prompt=p)))
    for conversation in CONVERSATIONS:
        assert go_render(tiny_template, conversation) == tiny.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


def test_a_gguf_lora_over_a_gguf_of_the_base_answers_as_base_plus_adapter(tmp_path, smol_adapter, tools):
    run = run_in_process(export_spec(tmp_path, {"dir": str(smol_adapter)}, format="gguf-lora"))
    folder = tmp_path / "out"
    document = exported(run, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["adapter.gguf", "export.json"]
    assert (folder / "adapter.gguf").stat().st_size < 5_000_000  # the adapter only
    assert (document["format"], document["checked"], document["seconds"]["merge"]) == ("gguf-lora", "greedy", None)
    assert document["template_matches"] and document["tokens_match"] and document["agreement"] == 1.0
    logs = [event["message"] for event in run.of_type("log")]
    assert any(m.startswith("converting the adapter with llama.cpp's convert_lora_to_gguf.py (f16)") for m in logs)
    assert any(m.startswith("converting the base model (for the check) to GGUF (f16)") for m in logs)


def test_a_split_q4_k_m_export_records_its_agreement(tmp_path, smol_adapter, tools, monkeypatch):
    """Quantized by llama.cpp from an f16 conversion split in files of at most 100 MB (the
    metadata alone in the first); the floor is lowered so that the figures are recorded
    whatever this machine's kernels make of them."""
    monkeypatch.setitem(export_module.AGREEMENT_FLOOR, "q4_k_m", 0.0)
    run = run_in_process(export_spec(tmp_path, {"dir": str(smol_adapter)}, quantize="q4_k_m", max_shard_bytes=100_000_000, max_shards=8))
    folder = tmp_path / "out"
    document = exported(run, folder)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["export.json", *(f"model-{i:05d}-of-00004.gguf" for i in range(1, 5))]
    assert all((folder / name).stat().st_size <= 100_000_000 for name in names)
    assert (folder / names[1]).stat().st_size < 5_000_000  # the first file: vocabulary and template only
    assert document["quantize"] == "q4_k_m" and document["tolerance"] == 0.0
    assert document["agreement"] in (0.0, 1 / 3, 2 / 3, 1.0) and document["seconds"]["quantize"] > 0
    assert document["template_matches"] and document["tokens_match"]


# ------------------------------------------------------------------------ refusals, stop, failed check


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory, tiny_model_dir) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("tiny-adapter") / "adapter"
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config).save_pretrained(folder)
    return folder


def test_the_tiny_random_model_merges_but_llama_cpp_cannot_convert_it(tmp_path, tiny_adapter, tools):
    (tmp_path / "merged").mkdir()
    merged = run_in_process(export_spec(tmp_path / "merged", {"dir": str(tiny_adapter)}, base=TINY_MODEL_ID, format="merged", dtype="f32"))
    assert exported(merged, tmp_path / "merged" / "out")["max_abs_diff"] <= 1e-3

    run = run_in_process(export_spec(tmp_path, {"dir": str(tiny_adapter)}, base=TINY_MODEL_ID))
    assert run.returncode == 1, run.describe()
    error = run.events[-1]
    assert error["type"] == "error" and error["kind"] == "training", error
    assert error["reason"].startswith("llama.cpp cannot convert this model: ") and "pre-tokenizer" in error["reason"]
    assert run.stages == ["initializing", "saving"] and not run.of_type("artifact")
    assert not (tmp_path / "out").exists()


def test_a_base_model_not_available_offline_is_named_and_nothing_is_written(tmp_path, tiny_adapter, monkeypatch):
    """The adapter's base is neither built in nor in the Hugging Face cache, and the hub is off:
    a `training` error names the model; no output, no artifact."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = run_in_process(export_spec(tmp_path, {"dir": str(tiny_adapter)}, base="brightrun-tests/no-such-model", format="merged"))
    assert run.returncode == 1, run.describe()
    error = run.events[-1]
    assert error["type"] == "error" and error["kind"] == "training", error
    assert "brightrun-tests/no-such-model" in error["reason"], error["reason"]
    assert not run.of_type("artifact")
    assert not (tmp_path / "out").exists()


def test_an_unknown_quantization_is_a_spec_error(tmp_path):
    run = run_in_process(export_spec(tmp_path, {"dir": "/nowhere"}, quantize="q4_k_xl"))
    assert run.returncode == 1
    error = run.events[-1]
    assert error["kind"] == "training" and error["reason"].startswith("spec field `export.quantize`: expected one of 'q8_0'")


def test_a_failed_check_ends_with_an_error_and_offers_nothing(tmp_path, tiny_adapter, monkeypatch):
    """Merged weights corrupted on their way to the disk (the output head shifted): the check
    sees it, and the output folder keeps only what was there before."""
    import torch

    merge = export_module._merge

    def corrupted(loaded, emitter, seconds):
        model = merge(loaded, emitter, seconds)
        with torch.no_grad():
            model.lm_head.weight.add_(0.05)
        return model

    monkeypatch.setattr(export_module, "_merge", corrupted)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("someone else's")
    run = run_in_process(export_spec(tmp_path, {"dir": str(tiny_adapter)}, base=TINY_MODEL_ID, format="merged", dtype="f32"))
    assert run.returncode == 1, run.describe()
    error = run.events[-1]
    assert error["type"] == "error" and error["kind"] == "training"
    assert re.fullmatch(
        r"the merged export failed its check: its next-token logits differ from base \+ adapter's by up to \S+, more than the f32 tolerance 0.001",
        error["reason"],
    ), error["reason"]
    assert run.stages == ["initializing", "saving", "evaluating"] and not run.of_type("artifact")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]  # nothing of the export, nothing else touched


def test_a_stop_mid_export_removes_the_output_and_exits_143(tmp_path, smol_adapter, tools):
    """A real SIGTERM while llama.cpp's converter runs: the converter is killed with the export."""

    def stop_while_converting(event, process, events):
        if event["type"] == "log" and event["message"].startswith("converting the merged model"):
            process.send_signal(signal.SIGTERM)

    run = run_trainer(export_spec(tmp_path, {"dir": str(smol_adapter)}), on_event=stop_while_converting)
    assert run.returncode == 143, run.describe()
    assert not run.of_type("artifact") and not run.of_type("done") and not run.of_type("error")
    messages = [event["message"] for event in run.of_type("log")]
    assert messages[-2:] == [
        "export interrupted by a stop request; its partial output was removed",
        "stopped by signal 15 during the export; nothing was kept",
    ]
    assert not (tmp_path / "out").exists()
