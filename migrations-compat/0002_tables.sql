-- The seed's seven tables, with the seed's column names and types, so rows BrightRun writes
-- are rows the seed's web app reads. Columns named brightrun_* are BrightRun's own:
--   brightrun_origin  the engine (profile user) that wrote the row, so several engines can
--                     share one database and `brightrun mirror verify` compares only its own;
--   brightrun_seq     the change-log seq of the version stored: an upsert carrying an older
--                     seq never overwrites a newer row;
--   brightrun_hash    a 64-bit hash of the record as BrightRun stores it, for verify.
-- Foreign keys are DEFERRABLE INITIALLY DEFERRED: a batch is checked at its commit.

CREATE TABLE IF NOT EXISTS public.datasets (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    name text NOT NULL,
    description text,
    format text,
    status text NOT NULL DEFAULT 'uploading'
        CHECK (status IN ('uploading', 'validating', 'ready', 'error')),
    storage_bucket text NOT NULL DEFAULT 'lora-datasets',
    storage_path text NOT NULL UNIQUE,
    file_name text NOT NULL,
    file_size bigint,
    total_training_pairs integer,
    total_validation_pairs integer,
    total_tokens bigint,
    avg_turns_per_conversation double precision,
    avg_tokens_per_turn double precision,
    training_ready boolean NOT NULL DEFAULT false,
    validated_at timestamptz,
    validation_errors jsonb,
    sample_data jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    brightrun_origin uuid,
    brightrun_seq bigint,
    brightrun_hash bigint,
    brightrun_statistics jsonb,
    brightrun_error_message text
);
CREATE INDEX IF NOT EXISTS idx_datasets_user_id ON public.datasets (user_id);
CREATE INDEX IF NOT EXISTS idx_datasets_status ON public.datasets (status);
CREATE INDEX IF NOT EXISTS idx_datasets_created_at ON public.datasets (created_at DESC);
CREATE INDEX IF NOT EXISTS idx_datasets_origin ON public.datasets (brightrun_origin);

CREATE TABLE IF NOT EXISTS public.training_jobs (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    dataset_id uuid NOT NULL REFERENCES public.datasets (id) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED,
    preset_id text NOT NULL,
    hyperparameters jsonb NOT NULL,
    gpu_config jsonb NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'initializing', 'running', 'completed', 'failed', 'cancelled')),
    current_stage text DEFAULT 'queued',
    progress numeric(5, 2) NOT NULL DEFAULT 0,
    current_epoch integer NOT NULL DEFAULT 0,
    total_epochs integer NOT NULL,
    current_step integer NOT NULL DEFAULT 0,
    total_steps integer,
    current_metrics jsonb,
    queued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    estimated_completion_at timestamptz,
    current_cost numeric(12, 4) NOT NULL DEFAULT 0,
    estimated_total_cost numeric(12, 4),
    final_cost numeric(12, 4),
    error_message text,
    error_stack text,
    retry_count integer NOT NULL DEFAULT 0,
    external_job_id text UNIQUE,
    -- The artifact made from this job (model_artifacts.job_id is the enforced direction).
    artifact_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    brightrun_origin uuid,
    brightrun_seq bigint,
    brightrun_hash bigint,
    brightrun_retry_of uuid,
    brightrun_backend text
);
CREATE INDEX IF NOT EXISTS idx_training_jobs_user_id ON public.training_jobs (user_id);
CREATE INDEX IF NOT EXISTS idx_training_jobs_status ON public.training_jobs (status);
CREATE INDEX IF NOT EXISTS idx_training_jobs_dataset_id ON public.training_jobs (dataset_id);
CREATE INDEX IF NOT EXISTS idx_training_jobs_created_at ON public.training_jobs (created_at DESC);
CREATE INDEX IF NOT EXISTS idx_training_jobs_origin ON public.training_jobs (brightrun_origin);

CREATE TABLE IF NOT EXISTS public.metrics_points (
    id uuid PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES public.training_jobs (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    timestamp timestamptz NOT NULL DEFAULT now(),
    epoch double precision,
    step integer NOT NULL,
    training_loss double precision,
    validation_loss double precision,
    learning_rate double precision,
    gradient_norm double precision,
    throughput double precision,
    gpu_utilization double precision,
    brightrun_origin uuid,
    brightrun_seq bigint,
    brightrun_hash bigint,
    UNIQUE (job_id, step)
);
CREATE INDEX IF NOT EXISTS idx_metrics_points_origin ON public.metrics_points (brightrun_origin);

CREATE TABLE IF NOT EXISTS public.model_artifacts (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    job_id uuid NOT NULL UNIQUE REFERENCES public.training_jobs (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    dataset_id uuid REFERENCES public.datasets (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
    name text NOT NULL,
    version text NOT NULL DEFAULT '1',
    description text,
    status text NOT NULL DEFAULT 'stored'
        CHECK (status IN ('stored', 'deployed', 'archived')),
    deployed_at timestamptz,
    quality_metrics jsonb,
    training_summary jsonb,
    configuration jsonb,
    artifacts jsonb,
    -- A lineage link; not a foreign key, so a batch never depends on another's order.
    parent_model_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    brightrun_origin uuid,
    brightrun_seq bigint,
    brightrun_hash bigint,
    brightrun_base_model text
);
CREATE INDEX IF NOT EXISTS idx_model_artifacts_user_id ON public.model_artifacts (user_id);
CREATE INDEX IF NOT EXISTS idx_model_artifacts_origin ON public.model_artifacts (brightrun_origin);

CREATE TABLE IF NOT EXISTS public.cost_records (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    job_id uuid REFERENCES public.training_jobs (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
    cost_type text NOT NULL CHECK (cost_type IN ('compute', 'storage', 'data_transfer')),
    amount numeric(12, 4) NOT NULL,
    details jsonb,
    billing_period date NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    brightrun_origin uuid,
    brightrun_seq bigint,
    brightrun_hash bigint
);
CREATE INDEX IF NOT EXISTS idx_cost_records_user_id ON public.cost_records (user_id);
CREATE INDEX IF NOT EXISTS idx_cost_records_billing_period ON public.cost_records (billing_period);
CREATE INDEX IF NOT EXISTS idx_cost_records_origin ON public.cost_records (brightrun_origin);

CREATE TABLE IF NOT EXISTS public.notifications (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    type text NOT NULL,
    title text NOT NULL,
    message text NOT NULL,
    priority text NOT NULL DEFAULT 'medium'
        CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    read boolean NOT NULL DEFAULT false,
    action_url text,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    brightrun_origin uuid,
    brightrun_seq bigint,
    brightrun_hash bigint
);
CREATE INDEX IF NOT EXISTS idx_notifications_user_id ON public.notifications (user_id, read);
CREATE INDEX IF NOT EXISTS idx_notifications_origin ON public.notifications (brightrun_origin);

CREATE TABLE IF NOT EXISTS public.training_checkpoints (
    id uuid PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES public.training_jobs (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    checkpoint_step integer NOT NULL,
    epoch double precision,
    training_loss double precision,
    validation_loss double precision,
    learning_rate double precision,
    storage_path text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    brightrun_origin uuid,
    brightrun_seq bigint,
    brightrun_hash bigint,
    UNIQUE (job_id, checkpoint_step)
);
CREATE INDEX IF NOT EXISTS idx_training_checkpoints_origin ON public.training_checkpoints (brightrun_origin);

-- How far each engine's mirror got, written in the same transaction as the rows it applied:
-- PostgreSQL's own record of what it holds. A missing row means "backfill first".
CREATE TABLE IF NOT EXISTS public.brightrun_mirror_state (
    origin uuid PRIMARY KEY,
    seq bigint NOT NULL,
    backfilled_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
