//! The configured cluster backends as the API shows them: `brightrun backends list|check`,
//! the Configure tab's backend picker and the status bar.

use super::Engine;
use crate::backend::DataAccess;
use crate::events::EngineEvent;
pub use brightrun_api::reports::BackendInfo;

impl Engine {
    /// Checks every backend concurrently, remembers and publishes each verdict.
    pub async fn check_backends(&self) -> Vec<BackendInfo> {
        let checks = self.inner.backends.iter().map(|(name, b)| {
            let name = name.clone();
            let b = b.clone();
            async move { (name, b.check().await) }
        });
        let verdicts = futures::future::join_all(checks).await;
        for (name, health) in verdicts {
            self.inner.store.publish(EngineEvent::BackendHealth {
                backend: name.clone(),
                reachable: health.reachable,
            });
            self.inner
                .backend_health
                .lock()
                .expect("not poisoned")
                .insert(name, health);
        }
        self.backends()
    }

    /// Every backend with its latest known verdict (no network).
    pub fn backends(&self) -> Vec<BackendInfo> {
        let health = self
            .inner
            .backend_health
            .lock()
            .expect("not poisoned")
            .clone();
        let cfg = &self.inner.config;
        self.inner
            .backends
            .iter()
            .map(|(name, b)| {
                let entry = cfg.backends.get(name);
                let address = match b.kind() {
                    "ray" => entry.and_then(|e| e.address.clone()).unwrap_or_default(),
                    "runpod" => format!(
                        "endpoint {}",
                        entry
                            .and_then(|e| e.endpoint_id.clone())
                            .unwrap_or_default()
                    ),
                    "local" => "this machine".into(),
                    _ => String::new(),
                };
                BackendInfo {
                    name: name.clone(),
                    kind: b.kind().into(),
                    address,
                    default: *name == cfg.training.default_backend,
                    data: match self.data_access(name) {
                        DataAccess::Paths => "paths".into(),
                        DataAccess::Urls => "urls".into(),
                    },
                    health: health.get(name).cloned(),
                }
            })
            .collect()
    }
}
