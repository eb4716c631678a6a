//! Experiment trackers fed from the change log: MLflow (`[tracking.mlflow]`, through its REST
//! API) and TensorBoard (`[tracking.tensorboard]`, event files). Each job becomes a run with
//! its hyperparameters, every metrics point at its step, and its dataset, backend, GPU, cost
//! and model. Each is a durable consumer ([`crate::follow`]) with a stored position, so an
//! outage or a restart loses nothing; what a replay sends twice is harmless (MLflow keeps one
//! copy of an identical metric; the event files are cut back to what their position records).

mod mlflow;
mod tensorboard;

use crate::config::Config;
use crate::domain::{ConsumerStatus, TrainingJob};
use crate::follow::SharedStatus;
use crate::paths::Paths;
use crate::secrets::Secrets;
use crate::store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const MLFLOW_CONSUMER: &str = "tracking_mlflow";
pub const TENSORBOARD_CONSUMER: &str = "tracking_tensorboard";
/// The secret holding an MLflow server's bearer token, when it needs one.
pub const MLFLOW_TOKEN_SECRET: &str = "mlflow_token";

#[derive(Default)]
pub struct Shared {
    pub mlflow: SharedStatus,
    pub tensorboard: SharedStatus,
}

#[derive(Clone)]
pub(crate) struct TrackingContext {
    pub store: Store,
    pub config: Config,
    pub secrets: Secrets,
    pub paths: Paths,
    pub shared: std::sync::Arc<Shared>,
    pub shutdown: CancellationToken,
}

/// Starts the configured trackers; returns their tasks and the consumer names of those off.
pub(crate) fn start(ctx: TrackingContext) -> (Vec<JoinHandle<()>>, Vec<&'static str>) {
    let (mut tasks, mut off) = (Vec::new(), Vec::new());
    match &ctx.config.tracking.mlflow {
        Some(m) => {
            let consumer = mlflow::Mlflow::new(m, &ctx.secrets, ctx.store.clone());
            tasks.push(tokio::spawn(crate::follow::follow(
                ctx.store.clone(),
                consumer,
                ctx.shared.mlflow.clone(),
                ctx.shutdown.clone(),
            )));
        }
        None => off.push(MLFLOW_CONSUMER),
    }
    match &ctx.config.tracking.tensorboard {
        Some(t) => {
            // A relative folder is under the data dir (a daemon's working folder is no guide).
            let dir = ctx.paths.data_dir.join(&t.dir);
            let consumer = tensorboard::Tensorboard::new(dir);
            tasks.push(tokio::spawn(crate::follow::follow(
                ctx.store.clone(),
                consumer,
                ctx.shared.tensorboard.clone(),
                ctx.shutdown.clone(),
            )));
        }
        None => off.push(TENSORBOARD_CONSUMER),
    }
    (tasks, off)
}

/// A job's hyperparameters as flat `name = value` pairs, by the names `--set` takes (the
/// method's own fields beside `method`, as `--set beta=…` sets them).
pub(crate) fn params(job: &TrainingJob) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(serde_json::Value::Object(mut m)) = serde_json::to_value(&job.hyperparameters) {
        if let Some(serde_json::Value::Object(method)) = m.remove("method") {
            for (k, v) in method {
                m.insert(if k == "name" { "method".into() } else { k }, v);
            }
        }
        for (k, v) in m {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            out.push((k, v));
        }
    }
    out
}

/// The metrics of a point, by the names trackers show (Hugging Face's own; a preference
/// run's as TRL logs them: `rewards/chosen`, `rewards/margins`, …).
pub(crate) fn scalars(p: &crate::domain::MetricsPoint) -> Vec<(&'static str, f64)> {
    let r = p.preference.clone().unwrap_or_default();
    [
        ("train_loss", p.training_loss),
        ("eval_loss", p.validation_loss),
        ("learning_rate", p.learning_rate),
        ("grad_norm", p.gradient_norm),
        ("tokens_per_second", p.throughput),
        ("gpu_utilization", p.gpu_utilization),
        ("epoch", Some(p.epoch)),
        ("rewards/chosen", r.rewards_chosen),
        ("rewards/rejected", r.rewards_rejected),
        ("rewards/margins", r.reward_margin),
        ("rewards/accuracies", r.reward_accuracy),
        ("logps/chosen", r.logps_chosen),
        ("logps/rejected", r.logps_rejected),
        ("kl", r.kl),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| v.is_finite()).map(|v| (k, v)))
    .collect()
}

impl crate::Engine {
    /// How each configured consumer of the change log is doing (none configured: empty).
    pub fn tracking_status(&self) -> Result<Vec<ConsumerStatus>, crate::EngineError> {
        let store = self.store();
        let last = store.last_seq()?;
        let one = |name: &str, target: String, consumer: &str, status: &SharedStatus| {
            let position = store.acked_changes(consumer)?.unwrap_or(0);
            let s = status.lock().map(|s| s.clone()).unwrap_or_default();
            Ok::<_, crate::EngineError>(ConsumerStatus {
                name: name.into(),
                target,
                position,
                behind: last.saturating_sub(position),
                last_error: s.last_error,
                last_error_at: s.last_error_at,
            })
        };
        let config = self.config();
        let mut out = Vec::new();
        if let Some(m) = &config.tracking.mlflow {
            let shared = &self.inner.tracking.mlflow;
            out.push(one("mlflow", m.uri.clone(), MLFLOW_CONSUMER, shared)?);
        }
        if let Some(t) = &config.tracking.tensorboard {
            let dir = self.paths().data_dir.join(&t.dir).display().to_string();
            let shared = &self.inner.tracking.tensorboard;
            out.push(one("tensorboard", dir, TENSORBOARD_CONSUMER, shared)?);
        }
        if !config.webhooks.is_empty() {
            let target = crate::wording::counted(config.webhooks.len() as u64, "webhook");
            let shared = &self.inner.webhooks.follow;
            out.push(one("webhooks", target, crate::webhooks::CONSUMER, shared)?);
        }
        Ok(out)
    }
}
