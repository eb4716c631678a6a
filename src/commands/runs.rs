//! `jobs compare`: training runs side by side, as a table of what differs and how each went.

use super::output::{self, money};
use brightrun_engine::domain::{ComparedRun, RunComparison};
use serde_json::Value;

/// The table: a row per run (the best marked `*`), the differing hyperparameters as columns,
/// then the losses, the evaluation, cost and duration.
pub fn print_runs(c: &RunComparison) {
    let mut header: Vec<String> = vec![" ID".into(), "STATUS".into()];
    header.extend(c.differing.iter().map(|k| k.to_uppercase()));
    header.extend(
        [
            "BEST VAL",
            "FINAL VAL",
            "BEST TRAIN",
            "FINAL TRAIN",
            "EVAL LOSS",
            "COST",
            "TIME",
        ]
        .map(String::from),
    );
    let preference = c.runs.iter().any(ComparedRun::trained_on_preferences);
    if preference {
        header.extend(["REWARD ACC", "MARGIN", "HELD-OUT PREF"].map(String::from));
    }
    let rows: Vec<Vec<String>> = c.runs.iter().map(|r| row(c, r, preference)).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    output::table(&header, &rows);
    if c.differing.is_empty() {
        println!("(the runs have the same configuration)");
    }
    if let (Some(best), Some(by)) = (c.best, &c.best_by) {
        println!("* best: {} by {}", best.short(), by.replace('_', " "));
    } else if c.differing.iter().any(|k| k == "method") {
        println!(
            "(no best: the runs trained with different methods, whose losses measure different things; `models show` gives each model's evaluation)"
        );
    }
}

/// A preference run's last reward accuracy and margin, and the share of held-out pairs whose
/// chosen reply the base and the adapter prefer.
fn preference_cells(r: &ComparedRun) -> [String; 3] {
    let share = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.0}%", v * 100.0));
    let held_out = r.evaluation.as_ref().map_or("–".to_string(), |e| {
        match (e.base_preference_accuracy, e.preference_accuracy) {
            (None, None) => "–".into(),
            (base, adapter) => format!("{} → {}", share(base), share(adapter)),
        }
    });
    [
        share(r.final_reward_accuracy),
        r.final_reward_margin
            .map_or("–".into(), |v| format!("{v:.3}")),
        held_out,
    ]
}

fn row(c: &RunComparison, r: &ComparedRun, preference: bool) -> Vec<String> {
    let mark = if c.best == Some(r.id) { "*" } else { " " };
    let mut cells = vec![
        format!("{mark}{}", r.id.short()),
        r.status.as_str().to_string(),
    ];
    for key in &c.differing {
        cells.push(if key == "dataset" {
            output::fit(&output::clean(&r.dataset_name), 24)
        } else {
            output::fit(&value(r.hyperparameters.get(key)), 24)
        });
    }
    let loss = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.4}"));
    cells.extend([
        loss(r.best_validation_loss),
        loss(r.final_validation_loss),
        loss(r.best_training_loss),
        loss(r.final_training_loss),
        loss(r.evaluation.as_ref().and_then(|e| e.adapter_loss)),
        money(r.cost),
        r.duration_seconds.map_or("–".into(), duration),
    ]);
    if preference {
        cells.extend(preference_cells(r));
    }
    cells
}

/// A hyperparameter's value as `--set` would take it.
fn value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "–".into(),
        Some(Value::String(s)) => output::clean(s),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| value(Some(i)))
            .collect::<Vec<_>>()
            .join(","),
        // A training method, as `jobs show` says it.
        Some(v @ Value::Object(_)) => {
            serde_json::from_value::<brightrun_engine::domain::TrainingMethod>(v.clone())
                .map_or_else(|_| output::clean(&v.to_string()), |m| m.describe())
        }
        Some(other) => other.to_string(),
    }
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_durations_read_as_typed() {
        assert_eq!(value(Some(&serde_json::json!(0.0001))), "0.0001");
        assert_eq!(
            value(Some(&serde_json::json!(["q_proj", "v_proj"]))),
            "q_proj,v_proj"
        );
        assert_eq!(value(Some(&serde_json::json!("a\u{1b}[2Jb"))), "ab");
        assert_eq!(value(None), "–");
        let dpo = serde_json::json!({"name": "dpo", "beta": 0.1, "loss_type": "ipo"});
        assert_eq!(value(Some(&dpo)), "dpo (beta 0.1, ipo)");
        assert_eq!(value(Some(&serde_json::json!({"name": "sft"}))), "sft");
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(7300.0), "2h01m");
    }

    #[test]
    fn preference_runs_show_their_rewards_and_held_out_preference() {
        let run: ComparedRun = serde_json::from_value(serde_json::json!({
            "id": "00000000-0000-0000-0000-000000000001",
            "status": "completed",
            "dataset_id": "00000000-0000-0000-0000-000000000002",
            "dataset_name": "pairs",
            "hyperparameters": {"method": {"name": "dpo", "beta": 0.1, "loss_type": "sigmoid"}},
            "final_reward_accuracy": 0.75,
            "final_reward_margin": 0.4213,
            "steps": 10,
            "total_steps": 10,
            "evaluation": {
                "model_id": "00000000-0000-0000-0000-000000000003",
                "scored": 0,
                "probes_changed": 0,
                "base_preference_accuracy": 0.5,
                "preference_accuracy": 0.8
            },
            "cost": 0.0
        }))
        .unwrap();
        assert_eq!(preference_cells(&run), ["75%", "0.421", "50% → 80%"]);
        let mut sft = run.clone();
        (
            sft.final_reward_accuracy,
            sft.final_reward_margin,
            sft.evaluation,
        ) = (None, None, None);
        assert_eq!(preference_cells(&sft), ["–", "–", "–"]);
        assert!(
            !sft.trained_on_preferences(),
            "SFT runs keep the table as it was"
        );
    }
}
