-- Row-level security as in the seed: a signed-in user (`authenticated`, with the JWT claims
-- set for the session) sees and writes only rows whose user_id is auth.uid(); tables without
-- a user_id (metrics_points, training_checkpoints) go through their job's owner. The mirror
-- itself connects as the tables' owner, which RLS does not restrict.

ALTER TABLE public.datasets ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.training_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.metrics_points ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.model_artifacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.cost_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.training_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.brightrun_mirror_state ENABLE ROW LEVEL SECURITY;

CREATE POLICY datasets_own ON public.datasets FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY training_jobs_own ON public.training_jobs FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY model_artifacts_own ON public.model_artifacts FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY cost_records_own ON public.cost_records FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY notifications_own ON public.notifications FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY metrics_points_own ON public.metrics_points FOR ALL TO authenticated
    USING (EXISTS (SELECT 1 FROM public.training_jobs j
                   WHERE j.id = metrics_points.job_id AND j.user_id = auth.uid()))
    WITH CHECK (EXISTS (SELECT 1 FROM public.training_jobs j
                        WHERE j.id = metrics_points.job_id AND j.user_id = auth.uid()));
CREATE POLICY training_checkpoints_own ON public.training_checkpoints FOR ALL TO authenticated
    USING (EXISTS (SELECT 1 FROM public.training_jobs j
                   WHERE j.id = training_checkpoints.job_id AND j.user_id = auth.uid()))
    WITH CHECK (EXISTS (SELECT 1 FROM public.training_jobs j
                        WHERE j.id = training_checkpoints.job_id AND j.user_id = auth.uid()));
-- brightrun_mirror_state has RLS on and no policy: only its owner (the mirror) reads it.

GRANT USAGE ON SCHEMA public TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    public.datasets, public.training_jobs, public.metrics_points, public.model_artifacts,
    public.cost_records, public.notifications, public.training_checkpoints
    TO authenticated;
