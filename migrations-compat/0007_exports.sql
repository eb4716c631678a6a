-- Exports (`brightrun models export`): a model is an adapter, or an export of its parent
-- (`parent_model_id`, the seed's column): `merged` (safetensors), `gguf` (llama.cpp, maybe
-- quantized, maybe with an Ollama Modelfile) or `gguf-lora`. An export carries the check it
-- passed before it was stored (greedy agreement with transformers, or the largest logit
-- difference). BrightRun's own columns; the seed's web app ignores them.

ALTER TABLE public.model_artifacts ADD COLUMN IF NOT EXISTS brightrun_kind text NOT NULL DEFAULT 'adapter';
ALTER TABLE public.model_artifacts ADD COLUMN IF NOT EXISTS brightrun_export jsonb;
