//! The import path: one pass copies, hashes and validates; the verdict is recorded at once;
//! cleaning makes a new dataset from the valid examples with a report of what was dropped.

use brightrun_engine::domain::*;
use brightrun_engine::paths::Paths;
use brightrun_engine::{CleanOptions, Engine, NewDataset};
use sha2::{Digest, Sha256};

fn engine() -> (tempfile::TempDir, Engine) {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(Paths::under(home.path())).unwrap();
    (home, engine)
}

fn stored(home: &tempfile::TempDir, d: &Dataset) -> Vec<u8> {
    let path = home
        .path()
        .join("data/objects")
        .join(&d.storage_bucket)
        .join(&d.storage_path);
    let found = walk(home.path())
        .into_iter()
        .find(|p| p.ends_with(&d.storage_path));
    std::fs::read(found.unwrap_or(path)).unwrap()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_import_stores_hashes_and_validates() {
    let (home, engine) = engine();
    let file = home.path().join("chat.jsonl");
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!(
            "{{\"messages\": [{{\"role\": \"user\", \"content\": \"Question {i} {}\"}}, {{\"role\": \"assistant\", \"content\": \"Answer {i}\"}}]}}\n",
            "padding ".repeat(i % 50)
        ));
    }
    std::fs::write(&file, &text).unwrap();
    let progress = std::sync::Mutex::new(Vec::new());
    let d = engine
        .add_dataset(&file, NewDataset::default(), &|done, total| {
            progress.lock().unwrap().push((done, total))
        })
        .await
        .unwrap();
    // The verdict comes with the import, no separate validation pass.
    assert_eq!(d.status, DatasetStatus::Ready, "{:?}", d.validation_errors);
    assert_eq!(d.format, Some(DatasetFormat::OpenaiChat));
    assert_eq!(d.statistics.as_ref().unwrap().total_examples, 3000);
    assert_eq!(d.file_size, text.len() as u64);
    assert_eq!(
        d.sha256.as_deref(),
        Some(hex::encode(Sha256::digest(text.as_bytes())).as_str())
    );
    assert_eq!(stored(&home, &d), text.as_bytes());
    {
        let p = progress.lock().unwrap();
        assert_eq!(p.last(), Some(&(text.len() as u64, text.len() as u64)));
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0));
    }
    // The validate call that follows an import (the CLI's) reuses the verdict once…
    let again = engine.validate_dataset(d.id).await.unwrap();
    assert_eq!(again.validated_at, d.validated_at);
    // …and a later one validates again.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let later = engine.validate_dataset(d.id).await.unwrap();
    assert!(later.validated_at > d.validated_at);
    assert_eq!(later.status, DatasetStatus::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_file_is_recorded_as_an_error_with_its_format() {
    let (home, engine) = engine();
    let file = home.path().join("dpo.jsonl");
    // A preference pair whose two replies are the same.
    std::fs::write(
        &file,
        "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"b\"}\n",
    )
    .unwrap();
    let d = engine
        .add_dataset(&file, NewDataset::default(), &|_, _| {})
        .await
        .unwrap();
    assert_eq!(d.status, DatasetStatus::Error);
    assert!(!d.training_ready);
    assert_eq!(d.format, Some(DatasetFormat::Preference));
    assert!(d.validation_errors[0].error.contains("are the same reply"));
    assert!(
        d.error_message.as_deref().unwrap().contains("preference"),
        "{:?}",
        d.error_message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_keeps_the_valid_examples_and_reports_the_rest() {
    let (home, engine) = engine();
    let file = home.path().join("mixed.jsonl");
    let good = |i: u32| format!("{{\"prompt\": \"p{i}\", \"completion\": \"c{i}\"}}");
    let lines = [
        good(1),
        "{\"prompt\": \"p\", \"completion\": \"\"}".to_string(),
        good(2),
        "not json".to_string(),
        good(1),
        good(3),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let d = engine
        .add_dataset(
            &file,
            NewDataset {
                name: Some("mixed".into()),
                description: None,
            },
            &|_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(d.status, DatasetStatus::Error);

    let (clean, report) = engine
        .clean_dataset(
            d.id,
            CleanOptions {
                drop_duplicates: true,
                name: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        clean.status,
        DatasetStatus::Ready,
        "{:?}",
        clean.validation_errors
    );
    assert_eq!(clean.name, "mixed (clean)");
    assert_eq!(report.kept, 3);
    assert_eq!(report.duplicates_dropped, 1);
    let dropped: Vec<u64> = report.dropped.iter().map(|r| r.line).collect();
    assert_eq!(dropped, [2, 4, 5]);
    assert!(
        report.dropped[0].reason.contains("\"completion\" is empty"),
        "{:?}",
        report.dropped
    );
    assert!(report.dropped[1].reason.contains("not valid JSON"));
    assert_eq!(report.dropped[2].reason, "an exact duplicate of line 1");
    assert_eq!(
        String::from_utf8(stored(&home, &clean)).unwrap(),
        format!("{}\n{}\n{}\n", good(1), good(2), good(3))
    );
    assert!(
        clean
            .description
            .unwrap()
            .contains("kept 3, dropped 3 (1 duplicate)")
    );
    // Keeping duplicates, with a name.
    let (named, report) = engine
        .clean_dataset(
            d.id,
            CleanOptions {
                drop_duplicates: false,
                name: Some("keep".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!((named.name.as_str(), report.kept), ("keep", 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_a_json_array_names_elements_and_writes_jsonl() {
    let (home, engine) = engine();
    let file = home.path().join("arr.json");
    std::fs::write(
        &file,
        "[{\"prompt\": \"a\",\n \"completion\": \"b\"}, {\"prompt\": 1, \"completion\": \"x\"}, {\"prompt\": \"c\", \"completion\": \"d\"}]",
    )
    .unwrap();
    let d = engine
        .add_dataset(&file, NewDataset::default(), &|_, _| {})
        .await
        .unwrap();
    let (clean, report) = engine
        .clean_dataset(d.id, CleanOptions::default())
        .await
        .unwrap();
    assert_eq!(report.dropped.len(), 1);
    assert_eq!(report.dropped[0].element, Some(1));
    assert!(
        report.dropped[0]
            .reason
            .starts_with("element 1: \"prompt\" is a number")
    );
    assert_eq!(clean.file_name, "arr.clean.jsonl");
    assert_eq!(
        String::from_utf8(stored(&home, &clean)).unwrap(),
        "{\"prompt\": \"a\",  \"completion\": \"b\"}\n{\"prompt\": \"c\", \"completion\": \"d\"}\n"
    );
    // Nothing valid: refused.
    let bad = home.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"\"}\n").unwrap();
    let d = engine
        .add_dataset(&bad, NewDataset::default(), &|_, _| {})
        .await
        .unwrap();
    let err = engine
        .clean_dataset(d.id, CleanOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no valid example to keep"),
        "{err}"
    );
}

/// A word-level `tokenizer.json` with a ChatML template beside it, built here.
fn write_tokenizer(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        r#"{"version":"1.0","truncation":null,"padding":null,
            "added_tokens":[{"id":0,"content":"<|im_start|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
                            {"id":1,"content":"<|im_end|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
            "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"<|im_start|>":0,"<|im_end|>":1,"[UNK]":2,"user":3,"assistant":4},"unk_token":"[UNK]"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"eos_token": "<|im_end|>", "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"}"#,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_exact_with_the_chat_template_overhead_when_a_tokenizer_is_configured() {
    let home = tempfile::tempdir().unwrap();
    let tok = home.path().join("tok");
    write_tokenizer(&tok);
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config/config.toml"),
        format!(
            "[validation]\ntokenizer = {:?}\n",
            tok.join("tokenizer.json").to_str().unwrap()
        ),
    )
    .unwrap();
    let engine = Engine::open(Paths::under(home.path())).unwrap();
    let file = home.path().join("d.jsonl");
    // 3 + 2 words of content; each message adds <|im_start|>, its role and <|im_end|>.
    std::fs::write(
        &file,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"one two three\"}, {\"role\": \"assistant\", \"content\": \"four five\"}]}\n",
    )
    .unwrap();
    let d = engine
        .add_dataset(&file, NewDataset::default(), &|_, _| {})
        .await
        .unwrap();
    let s = d.statistics.unwrap();
    assert!(s.tokens_exact);
    assert_eq!(s.total_tokens, 5 + 2 * 3);
}
