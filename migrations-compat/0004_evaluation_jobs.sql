-- Evaluation jobs (`brightrun models eval`): a job says what it is for (`{"kind": "training"}`
-- or `{"kind": "evaluation", "models": [...], "prompts": [...], "max_new_tokens": N}`), and a
-- completed evaluation carries what it measured (the comparison: every model's answer to
-- every prompt, scored). Both are BrightRun's own columns; the seed's web app ignores them.

ALTER TABLE public.training_jobs ADD COLUMN IF NOT EXISTS brightrun_task jsonb;
ALTER TABLE public.training_jobs ADD COLUMN IF NOT EXISTS brightrun_comparison jsonb;
