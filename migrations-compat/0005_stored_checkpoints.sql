-- Checkpoints stored like models (`jobs retry` continues from them on any backend): each
-- checkpoint's archive in the models bucket has a size and a sha256, checked before a resume
-- extracts it. `storage_path` is then the archive's key; a checkpoint retention deleted keeps
-- its row with an empty `storage_path` and no size. BrightRun's own columns; the seed's web app
-- ignores them.

ALTER TABLE public.training_checkpoints ADD COLUMN IF NOT EXISTS brightrun_size bigint;
ALTER TABLE public.training_checkpoints ADD COLUMN IF NOT EXISTS brightrun_sha256 text;
