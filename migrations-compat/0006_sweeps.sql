-- Hyperparameter sweeps (`brightrun jobs sweep`, `/api/sweeps`): one row per sweep, with its
-- spec and runs as JSON and the ids of the jobs it started. BrightRun's own table; the seed's
-- web app does not know it. Rows are owned like jobs: a user sees their own.

CREATE TABLE IF NOT EXISTS public.brightrun_sweeps (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    name text NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'completed', 'cancelled')),
    spec jsonb NOT NULL,
    runs jsonb NOT NULL,
    best_job_id uuid,
    best_by text,
    spent float8 NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    completed_at timestamptz,
    brightrun_origin uuid,
    brightrun_seq int8,
    brightrun_hash int8
);
CREATE INDEX IF NOT EXISTS brightrun_sweeps_user ON public.brightrun_sweeps (user_id, created_at DESC);

ALTER TABLE public.brightrun_sweeps ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS brightrun_sweeps_own ON public.brightrun_sweeps;
CREATE POLICY brightrun_sweeps_own ON public.brightrun_sweeps FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
GRANT SELECT, INSERT, UPDATE, DELETE ON public.brightrun_sweeps TO authenticated;
