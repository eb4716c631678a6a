//! MLflow through its REST API (`/api/2.0/mlflow/…`): each training job is a run in
//! `[tracking.mlflow] experiment`, found again by its `brightrun.job_id` tag (so a restart, or
//! a run created just before a crash, never makes a second one), with the hyperparameters as
//! params, every metrics point at its step with the point's own time (a replayed point is the
//! identical metric, which MLflow's SQL stores keep once), the dataset, backend, GPU, cost and
//! status as tags, and the model's id and location when it completes.

use crate::config::MlflowConfig;
use crate::domain::*;
use crate::events::{EngineEvent, Sequenced};
use crate::follow::{Consumer, on_store};
use crate::ids::JobId;
use crate::secrets::{Secret, Secrets};
use crate::store::Store;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// MLflow's log-batch limits.
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;

pub(crate) struct Mlflow {
    uri: String,
    experiment: String,
    token: Option<Secret>,
    http: reqwest::Client,
    store: Store,
    experiment_id: Option<String>,
    runs: HashMap<JobId, String>,
    /// Jobs whose params this process has logged.
    params_logged: HashSet<JobId>,
}

impl Mlflow {
    pub fn new(c: &MlflowConfig, secrets: &Secrets, store: Store) -> Self {
        Self {
            uri: c.uri.trim_end_matches('/').to_string(),
            experiment: c.experiment.clone(),
            token: secrets.get(super::MLFLOW_TOKEN_SECRET).cloned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(10))
                .build()
                .expect("the HTTP client builds"),
            store,
            experiment_id: None,
            runs: HashMap::new(),
            params_logged: HashSet::new(),
        }
    }

    /// One REST call; MLflow's error code and message on failure (never the token).
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, Call> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.uri);
        let mut req = self.http.request(method.clone(), &url);
        req = if method == reqwest::Method::GET {
            req.query(&body.as_object().map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect::<Vec<_>>()
            }))
        } else {
            req.json(&body)
        };
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        let r = req
            .send()
            .await
            .map_err(|e| Call::Down(format!("MLflow at {}: {}", self.uri, e.without_url())))?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let code = v["error_code"].as_str().unwrap_or("").to_string();
        let message = format!(
            "MLflow at {} answered {status} to {path}: {} {}",
            self.uri,
            code,
            v["message"].as_str().unwrap_or("")
        );
        Err(if status.is_client_error() && status.as_u16() != 429 {
            Call::Refused { code, message }
        } else {
            Call::Down(message)
        })
    }

    async fn experiment_id(&mut self) -> Result<String, String> {
        if let Some(id) = &self.experiment_id {
            return Ok(id.clone());
        }
        let get = json!({"experiment_name": self.experiment});
        let id = match self
            .call(reqwest::Method::GET, "experiments/get-by-name", get.clone())
            .await
        {
            Ok(v) => v["experiment"]["experiment_id"].as_str().map(String::from),
            Err(Call::Refused { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => {
                match self
                    .call(
                        reqwest::Method::POST,
                        "experiments/create",
                        json!({"name": self.experiment}),
                    )
                    .await
                {
                    Ok(v) => v["experiment_id"].as_str().map(String::from),
                    // Created by someone else meanwhile.
                    Err(Call::Refused { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => self
                        .call(reqwest::Method::GET, "experiments/get-by-name", get)
                        .await
                        .map_err(String::from)?["experiment"]["experiment_id"]
                        .as_str()
                        .map(String::from),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let id = id.ok_or_else(|| format!("MLflow at {} sent no experiment id", self.uri))?;
        self.experiment_id = Some(id.clone());
        Ok(id)
    }

    /// The job's run: known, found by its tag, or created.
    async fn run_of(&mut self, job: &TrainingJob) -> Result<String, String> {
        if let Some(r) = self.runs.get(&job.id) {
            return Ok(r.clone());
        }
        let experiment = self.experiment_id().await?;
        let found = self
            .call(
                reqwest::Method::POST,
                "runs/search",
                json!({
                    "experiment_ids": [experiment],
                    "filter": format!("tags.`brightrun.job_id` = '{}'", job.id),
                    "max_results": 1,
                }),
            )
            .await
            .map_err(String::from)?;
        let id = match found["runs"][0]["info"]["run_id"].as_str() {
            Some(id) => id.to_string(),
            None => {
                let created = self
                    .call(
                        reqwest::Method::POST,
                        "runs/create",
                        json!({
                            "experiment_id": experiment,
                            "run_name": format!("brightrun-{}", job.id.short()),
                            "start_time": job.started_at.unwrap_or(job.queued_at).timestamp_millis(),
                            "tags": [{"key": "brightrun.job_id", "value": job.id.to_string()}],
                        }),
                    )
                    .await
                    .map_err(String::from)?;
                created["run"]["info"]["run_id"]
                    .as_str()
                    .ok_or_else(|| format!("MLflow at {} sent no run id", self.uri))?
                    .to_string()
            }
        };
        self.runs.insert(job.id, id.clone());
        Ok(id)
    }

    async fn log_batch(&self, run: &str, body: Value) -> Result<(), String> {
        let mut body = body;
        body["run_id"] = json!(run);
        self.call(reqwest::Method::POST, "runs/log-batch", body)
            .await
            .map(|_| ())
            .map_err(String::from)
    }

    /// Params (once per process: the same values again are accepted), tags and status.
    async fn sync_job(&mut self, job: &TrainingJob) -> Result<(), String> {
        let run = self.run_of(job).await?;
        if self.params_logged.insert(job.id) {
            let params = super::params(job);
            for chunk in params.chunks(MAX_PARAMS) {
                let ps: Vec<Value> = chunk
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect();
                match self
                    .call(
                        reqwest::Method::POST,
                        "runs/log-batch",
                        json!({"run_id": run, "params": ps}),
                    )
                    .await
                {
                    Ok(_) => {}
                    // A param MLflow already holds with another value cannot change; retrying
                    // would hold every later change back.
                    Err(Call::Refused { message, .. }) => {
                        tracing::warn!("tracking (MLflow): job {}: {message}", job.id.short())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let tags: Vec<Value> = tags(job)
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        self.log_batch(&run, json!({"tags": tags})).await?;
        if job.status.is_terminal() {
            let status = match job.status {
                JobStatus::Completed => "FINISHED",
                JobStatus::Failed => "FAILED",
                _ => "KILLED",
            };
            let end = job
                .completed_at
                .unwrap_or(job.updated_at)
                .timestamp_millis();
            self.call(
                reqwest::Method::POST,
                "runs/update",
                json!({"run_id": run, "status": status, "end_time": end}),
            )
            .await
            .map_err(String::from)?;
        }
        Ok(())
    }

    async fn log_points(
        &mut self,
        job: &TrainingJob,
        points: &[MetricsPoint],
    ) -> Result<(), String> {
        let run = self.run_of(job).await?;
        let metrics: Vec<Value> = points
            .iter()
            .flat_map(|p| {
                let ts = p.timestamp.timestamp_millis();
                super::scalars(p).into_iter().map(
                    move |(k, v)| json!({"key": k, "value": v, "timestamp": ts, "step": p.step}),
                )
            })
            .collect();
        for chunk in metrics.chunks(MAX_METRICS) {
            self.log_batch(&run, json!({"metrics": chunk})).await?;
        }
        Ok(())
    }

    /// A job's record: from the batch, else from the store (a job whose changes were before
    /// this consumer's start).
    async fn job(
        &self,
        id: JobId,
        seen: &BTreeMap<JobId, Arc<TrainingJob>>,
    ) -> Result<Option<TrainingJob>, String> {
        if let Some(j) = seen.get(&id) {
            return Ok(Some((**j).clone()));
        }
        let store = self.store.clone();
        on_store(move || store.job(id)).await
    }
}

/// Why a call failed: the server refused it (a 4xx: retrying cannot help), or it was not
/// reached or failed itself (retry later).
enum Call {
    Refused { code: String, message: String },
    Down(String),
}

impl From<Call> for String {
    fn from(c: Call) -> String {
        match c {
            Call::Refused { message, .. } | Call::Down(message) => message,
        }
    }
}

/// The run's tags: what it trained on, where, for how much, and what it made.
fn tags(job: &TrainingJob) -> Vec<(String, String)> {
    let mut t = vec![
        ("brightrun.job_id".into(), job.id.to_string()),
        ("brightrun.dataset_id".into(), job.dataset_id.to_string()),
        ("brightrun.backend".into(), job.gpu_config.backend.clone()),
        (
            "brightrun.gpu".into(),
            format!("{}x {}", job.gpu_config.gpu_count, job.gpu_config.gpu_type),
        ),
        ("brightrun.status".into(), job.status.as_str().into()),
        (
            "brightrun.cost_usd".into(),
            format!("{:.4}", job.final_cost.unwrap_or(job.current_cost)),
        ),
        (
            "mlflow.runName".into(),
            format!("brightrun-{}", job.id.short()),
        ),
    ];
    if let Some(m) = job.artifact_id {
        t.push(("brightrun.model_id".into(), m.to_string()));
    }
    if let Some(e) = &job.error_message {
        t.push(("brightrun.error".into(), e.chars().take(5000).collect()));
    }
    t
}

#[async_trait::async_trait]
impl Consumer for Mlflow {
    fn name(&self) -> &str {
        super::MLFLOW_CONSUMER
    }

    async fn apply(&mut self, changes: &[Arc<Sequenced>]) -> Result<(), String> {
        // The newest record of each job, its points and its model, in this batch.
        let mut jobs: BTreeMap<JobId, Arc<TrainingJob>> = BTreeMap::new();
        let mut points: BTreeMap<JobId, Vec<MetricsPoint>> = BTreeMap::new();
        let mut models: Vec<Arc<ModelArtifact>> = Vec::new();
        for c in changes {
            match &c.event {
                EngineEvent::Job(j) => {
                    jobs.insert(j.id, j.clone());
                }
                EngineEvent::Metrics { job_id, points: p } => {
                    points.entry(*job_id).or_default().extend(p.iter().cloned())
                }
                EngineEvent::Artifact(a) => models.push(a.clone()),
                _ => {}
            }
        }
        for (id, ps) in &points {
            match self.job(*id, &jobs).await? {
                Some(job) if job.task.is_training() => self.log_points(&job, ps).await?,
                _ => {}
            }
        }
        for job in jobs.values().filter(|j| j.task.is_training()) {
            self.sync_job(job).await?;
        }
        // An export's run is its adapter's (its own job trains nothing).
        for m in models
            .into_iter()
            .filter(|m| m.kind == crate::domain::ModelKind::Adapter)
        {
            let Some(job) = self.job(m.job_id, &jobs).await? else {
                continue;
            };
            let run = self.run_of(&job).await?;
            let tags = json!([
                {"key": "brightrun.model_id", "value": m.id.to_string()},
                {"key": "brightrun.model_name", "value": m.name},
                {"key": "brightrun.model_location", "value": m.storage_path},
            ]);
            self.log_batch(&run, json!({"tags": tags})).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::config::MlflowConfig;

    /// The consumer's throughput into a real MLflow server: `bench/tracking.sh` starts one
    /// and runs this with BRIGHTRUN_BENCH_MLFLOW_URI and BRIGHTRUN_BENCH_POINTS set. A job's
    /// points are committed 20 at a time (as a run's polls commit them), then the consumer
    /// follows the log from the start until it has acknowledged the last change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a benchmark: needs an MLflow server (bench/tracking.sh runs it)"]
    async fn feeds_a_runs_points_to_mlflow() {
        let uri = std::env::var("BRIGHTRUN_BENCH_MLFLOW_URI").expect("BRIGHTRUN_BENCH_MLFLOW_URI");
        let values: usize = std::env::var("BRIGHTRUN_BENCH_POINTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut job = crate::store::fixture::samples().jobs[0].clone();
        job.id = JobId::new();
        store.put(&job).unwrap();
        // Each point carries train_loss, learning_rate and epoch: three metric values.
        let points: Vec<MetricsPoint> = (1..=values / 3)
            .map(|step| MetricsPoint {
                job_id: job.id,
                timestamp: now(),
                epoch: step as f64 / 1000.0,
                step: step as u64,
                training_loss: Some(2.0 / (1.0 + step as f64 / 100.0)),
                validation_loss: None,
                learning_rate: Some(1e-4),
                gradient_norm: None,
                throughput: None,
                gpu_utilization: None,
                preference: None,
            })
            .collect();
        for chunk in points.chunks(20) {
            store.write(|w| w.put_metrics(chunk)).unwrap();
        }
        let last = store.last_seq().unwrap();
        let config = MlflowConfig {
            uri,
            experiment: "bench-brightrun".into(),
        };
        let consumer = Mlflow::new(&config, &Secrets::default(), store.clone());
        let status = crate::follow::SharedStatus::default();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let t = std::time::Instant::now();
        let task = tokio::spawn(crate::follow::follow(
            store.clone(),
            consumer,
            status.clone(),
            shutdown.clone(),
        ));
        while store.acked_changes(super::super::MLFLOW_CONSUMER).unwrap() != Some(last) {
            if let Some(e) = status.lock().unwrap().last_error.clone() {
                panic!("{e}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        shutdown.cancel();
        let _ = task.await;
        let n = points.len() * 3;
        println!(
            "brightrun MLflow consumer: {n} points in {secs:.2} s = {:.0} points/s ({} changes of 20 steps)",
            n as f64 / secs,
            last - 1
        );
    }
}
