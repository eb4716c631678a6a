-- Preference training (DPO, ORPO, SimPO, KTO). A job's method and its own hyperparameters
-- travel in the seed's `training_jobs.hyperparameters` (`hyperparameters->'method'->>'name'`),
-- and a preference file's pair statistics in `datasets.brightrun_statistics`
-- (`->'preference'`). A logged step's preference figures (rewards of the chosen and the
-- rejected replies, their margin, the reward accuracy, the log-probabilities and KTO's KL
-- estimate) have no seed column: they go here, beside the seed's columns, which stay as
-- they are. Null for SFT runs. BrightRun's own column; the seed's web app ignores it.

ALTER TABLE public.metrics_points ADD COLUMN IF NOT EXISTS brightrun_preference jsonb;
