//! Every format is detected and normalised; the statistics are right.

use brightrun_engine::domain::{ChatMessage, DatasetFormat, Severity};
use brightrun_engine::validation::{
    ValidationOptions, ValidationReport, estimate_tokens, in_validation_split, load_tokenizer,
    validate_path, validate_reader,
};
use std::sync::Arc;

fn run(name: &str, text: &str, opts: &ValidationOptions) -> ValidationReport {
    validate_reader(text.as_bytes(), name, opts, &mut |_| {}).unwrap()
}

fn check(text: &str) -> ValidationReport {
    run("data.jsonl", text, &ValidationOptions::default())
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
    }
}

fn assert_clean(r: &ValidationReport) {
    assert_eq!(r.statistics.error_count, 0, "{:#?}", r.issues);
    assert_eq!(r.statistics.warning_count, 0, "{:#?}", r.issues);
    assert!(r.issues.is_empty());
}

#[test]
fn brightrun_v4() {
    let r = check(concat!(
        r#"{"conversation_id": "c1", "turns": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}"#,
        "\n",
        r#"{"conversation_id": 2, "turns": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]}"#,
        "\n"
    ));
    assert_clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::BrightrunV4));
    assert_eq!(r.statistics.total_examples, 2);
    assert_eq!(
        r.sample[0],
        vec![
            msg("system", "Be kind."),
            msg("user", "Hi"),
            msg("assistant", "Hello!")
        ]
    );
    assert_eq!(r.sample[1].len(), 4);
    assert_eq!(r.statistics.avg_turns_per_conversation, 3.5);
}

#[test]
fn brightrun_flat_with_meta_line() {
    let r = check(concat!(
        r#"{"_meta": {"version": 4, "source": "export"}}"#,
        "\n",
        r#"{"system_prompt": "You are terse.", "current_user_input": "2+2?", "target_response": "4"}"#,
        "\n",
        r#"{"system_prompt": "", "current_user_input": "Name?", "target_response": "Bright"}"#,
        "\n",
        r#"{"system_prompt": null, "current_user_input": "Why?", "target_response": "Because."}"#,
    ));
    assert_clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::BrightrunFlat));
    assert_eq!(r.statistics.total_examples, 3);
    assert_eq!(
        r.sample[0],
        vec![
            msg("system", "You are terse."),
            msg("user", "2+2?"),
            msg("assistant", "4")
        ]
    );
    // An empty or null system prompt adds no message.
    assert_eq!(
        r.sample[1],
        vec![msg("user", "Name?"), msg("assistant", "Bright")]
    );
    assert_eq!(r.sample[2].len(), 2);
}

#[test]
fn openai_chat_with_weights_and_text_parts() {
    let r = check(concat!(
        r#"{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1", "weight": 0}, {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2", "weight": 1}]}"#,
        "\n",
        r#"{"messages": [{"role": "developer", "content": "D"}, {"role": "user", "content": [{"type": "text", "text": "part one, "}, {"type": "text", "text": "part two"}]}, {"role": "assistant", "content": "caf\u00e9 \"ok\"\n"}]}"#,
        "\n"
    ));
    assert_clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::OpenaiChat));
    assert_eq!(r.sample[0].len(), 5);
    assert_eq!(
        r.sample[1],
        vec![
            msg("system", "D"),
            msg("user", "part one, part two"),
            msg("assistant", "café \"ok\"\n"),
        ]
    );
}

#[test]
fn alpaca() {
    let r = check(concat!(
        r#"{"instruction": "Translate", "input": "Hallo", "output": "Hello"}"#,
        "\n",
        r#"{"instruction": "Say hi", "input": "", "output": "Hi", "system": "Be brief."}"#,
        "\n",
        r#"{"instruction": "Count", "output": "1 2 3"}"#,
        "\n"
    ));
    assert_clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::Alpaca));
    assert_eq!(
        r.sample[0],
        vec![msg("user", "Translate\n\nHallo"), msg("assistant", "Hello")]
    );
    assert_eq!(
        r.sample[1],
        vec![
            msg("system", "Be brief."),
            msg("user", "Say hi"),
            msg("assistant", "Hi")
        ]
    );
    assert_eq!(
        r.sample[2],
        vec![msg("user", "Count"), msg("assistant", "1 2 3")]
    );
}

#[test]
fn sharegpt() {
    let r = check(concat!(
        r#"{"system": "Sys", "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}"#,
        "\n",
        r#"{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}, {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]}"#,
    ));
    assert_clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::Sharegpt));
    assert_eq!(
        r.sample[0],
        vec![
            msg("system", "Sys"),
            msg("user", "Q"),
            msg("assistant", "A")
        ]
    );
    assert_eq!(r.sample[1][4], msg("assistant", "A2"));
}

#[test]
fn prompt_completion() {
    let r = check(concat!(
        "{\"prompt\": \"Capital of France?\", \"completion\": \" Paris\"}\n",
        "{\"prompt\": \"Capital of Italy?\", \"completion\": \" Rome\"}\n",
    ));
    assert_clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::PromptCompletion));
    assert_eq!(
        r.sample[0],
        vec![
            msg("user", "Capital of France?"),
            msg("assistant", " Paris")
        ]
    );
    assert!(r.training_ready);
}

#[test]
fn json_array_file_is_streamed_with_element_lines() {
    let text = "\u{feff}[\n  {\n    \"instruction\": \"A\",\n    \"output\": \"B\"\n  },\n  {\"instruction\": \"C\", \"output\": \"\"},\n  {\"instruction\": \"E\", \"output\": \"F\"}\n]\n";
    let r = run("data.json", text, &ValidationOptions::default());
    assert_eq!(r.format, Some(DatasetFormat::Alpaca));
    assert_eq!(r.statistics.total_examples, 2);
    assert_eq!(r.statistics.error_count, 1, "{:#?}", r.issues);
    assert_eq!(r.issues[0].line, 6);
    assert!(r.issues[0].error.contains("\"output\" is empty"));
    assert_eq!(r.sample[0], vec![msg("user", "A"), msg("assistant", "B")]);

    // A syntax error inside a pretty-printed element names its own line.
    let text = "[\n  {\"prompt\": \"p\", \"completion\": \"c\"},\n  {\n    \"prompt\": \"p\"\n    \"completion\": \"c\"\n  },\n  {\"prompt\": \"q\", \"completion\": \"c\"}\n]";
    let r = run("data.json", text, &ValidationOptions::default());
    assert_eq!(r.statistics.error_count, 1, "{:#?}", r.issues);
    assert_eq!(r.issues[0].line, 3);
    assert!(
        r.issues[0].error.contains("line 5"),
        "{}",
        r.issues[0].error
    );
}

#[test]
fn bom_crlf_and_blank_lines_are_fine_and_lines_still_count() {
    let (a, b) = (
        r#"{"prompt": "p", "completion": "c"}"#,
        r#"{"prompt": "q", "completion": "d"}"#,
    );
    let text =
        format!("\u{feff}{a}\r\n\r\n   \n{b}\r\n{{\"prompt\": 1, \"completion\": \"c\"}}\r\n\n");
    let r = check(&text);
    assert_eq!(r.statistics.total_examples, 2);
    assert_eq!(r.statistics.error_count, 1);
    assert_eq!(r.issues[0].line, 5);
    assert_eq!(r.sample[0][1].content, "c", "no stray \\r");
}

#[test]
fn statistics_are_filled() {
    // Token estimate: ceil(bytes / 4) per message.
    let mut text = String::new();
    for i in 0..20 {
        // user 8 bytes → 2 tokens; assistant 4·i+1 bytes → i+1 tokens
        let answer = "x".repeat(4 * i + 1);
        text.push_str(&format!(
            "{{\"messages\": [{{\"role\": \"user\", \"content\": \"question\"}}, {{\"role\": \"assistant\", \"content\": \"{answer}\"}}]}}\n"
        ));
    }
    // Two exact duplicates (one written with an escape: the same text once decoded).
    text.push_str("{\"messages\": [{\"role\": \"user\", \"content\": \"question\"}, {\"role\": \"assistant\", \"content\": \"x\"}]}\n");
    text.push_str("{\"messages\": [{\"role\": \"user\", \"content\": \"questio\\u006e\"}, {\"role\": \"assistant\", \"content\": \"x\"}]}\n");
    let opts = ValidationOptions {
        max_seq_length: 15,
        holdout_fraction: 0.0,
        ..Default::default()
    };
    let r = run("d.jsonl", &text, &opts);
    let s = &r.statistics;
    assert_eq!(s.total_examples, 22);
    assert_eq!(s.total_training_pairs, 22);
    assert_eq!(s.total_validation_pairs, 0);
    assert!(!s.tokens_exact);
    // Per example: 2 + (i + 1) tokens, i = 0..20, plus two examples of 3.
    let per: Vec<u64> = (0..20).map(|i| 3 + i).chain([3, 3]).collect();
    assert_eq!(s.total_tokens, per.iter().sum::<u64>());
    assert_eq!(s.tokens_max, 22);
    let mut sorted = per.clone();
    sorted.sort();
    assert_eq!(s.tokens_p50, sorted[10]);
    assert_eq!(s.tokens_p95, sorted[20]);
    assert_eq!(s.avg_turns_per_conversation, 2.0);
    assert!((s.avg_tokens_per_turn - s.total_tokens as f64 / 44.0).abs() < 1e-9);
    assert_eq!(s.duplicate_examples, 2);
    assert_eq!(s.max_seq_length, 15);
    // Examples with more than 15 tokens: i = 13..19 → 7 of them, first on line 14.
    assert_eq!(s.examples_over_max_seq_length, 7);
    assert_eq!(s.error_count, 0);
    assert_eq!(s.warning_count, 2);
    let over = r
        .issues
        .iter()
        .find(|i| i.error.contains("longer than"))
        .unwrap();
    assert_eq!(over.line, 14);
    assert_eq!(over.severity, Severity::Warning);
    assert!(
        over.error.contains("lines 14, 15, 16, 17, 18 and 2 more"),
        "{}",
        over.error
    );
    let dup = r
        .issues
        .iter()
        .find(|i| i.error.contains("duplicate"))
        .unwrap();
    assert_eq!(dup.line, 21);
    assert!(
        dup.error.contains("line 21 repeats line 1"),
        "{}",
        dup.error
    );
    assert!(
        dup.error.contains("line 22 repeats line 1"),
        "{}",
        dup.error
    );
    assert!(r.training_ready);
    assert_eq!(r.sample.len(), 3);
    assert_eq!(estimate_tokens("question"), 2);
}

#[test]
fn split_counts_follow_the_protocol() {
    let line = |i: usize| format!("{{\"prompt\": \"p{i}\", \"completion\": \"c\"}}\n");
    let text: String = (0..10_000).map(line).collect();
    let opts = ValidationOptions::default();
    assert_eq!(opts.holdout_fraction, 0.1);
    let r = run("d.jsonl", &text, &opts);
    assert_eq!(r.statistics.total_examples, 10_000);
    assert_eq!(r.statistics.total_validation_pairs, 1_000);
    assert_eq!(r.statistics.total_training_pairs, 9_000);
    let none = ValidationOptions {
        holdout_fraction: 0.0,
        ..Default::default()
    };
    let r = run("d.jsonl", &text, &none);
    assert_eq!(r.statistics.total_validation_pairs, 0);
    assert_eq!(r.statistics.total_training_pairs, 10_000);
    // The counts are the rule applied to each example's index.
    let expected = (0..10_000u64)
        .filter(|&i| in_validation_split(i, 42, 0.1))
        .count();
    assert_eq!(expected, 1_000);
}

#[test]
fn split_index_counts_invalid_records_like_the_trainer() {
    // The trainer's record index counts every non-blank record (valid or not), except a
    // leading _meta line; the engine's counts must agree with it.
    let good = "{\"prompt\": \"p\", \"completion\": \"c\"}\n";
    let text = format!("{{\"_meta\": 1}}\n{good}not json\n\n{good}{good}");
    let opts = ValidationOptions {
        holdout_fraction: 0.5,
        split_seed: 0,
        ..Default::default()
    };
    let r = run("d.jsonl", &text, &opts);
    // Records 0, 2 and 3 are valid.
    let want = [0u64, 2, 3]
        .iter()
        .filter(|&&i| in_validation_split(i, 0, 0.5))
        .count() as u64;
    assert_eq!(r.statistics.total_validation_pairs, want);
    assert_eq!(r.statistics.total_training_pairs, 3 - want);
}

fn tiny_tokenizer() -> tokenizers::Tokenizer {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    let vocab = [("[UNK]", 0u32), ("hello", 1), ("world", 2)]
        .into_iter()
        .map(|(w, i)| (w.to_string(), i))
        .collect();
    let model = WordLevel::builder()
        .vocab(vocab)
        .unk_token("[UNK]".into())
        .build()
        .unwrap();
    let mut t = tokenizers::Tokenizer::new(model);
    t.with_pre_tokenizer(Some(Whitespace {}));
    t
}

#[test]
fn tokenizer_gives_exact_counts() {
    let text = "{\"prompt\": \"hello world hello\", \"completion\": \"world\"}\n";
    let opts = ValidationOptions {
        tokenizer: Some(Arc::new(tiny_tokenizer())),
        ..Default::default()
    };
    let r = run("d.jsonl", text, &opts);
    assert!(r.statistics.tokens_exact);
    assert_eq!(r.statistics.total_tokens, 4);
    assert_eq!(r.statistics.tokens_max, 4);
    assert_eq!(r.statistics.avg_tokens_per_turn, 2.0);
}

#[test]
fn load_tokenizer_from_file_and_name_the_path_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    tiny_tokenizer().save(&path, false).unwrap();
    let t = load_tokenizer(&path).unwrap();
    assert_eq!(t.encode("hello world", false).unwrap().len(), 2);
    let missing = dir.path().join("nope.json");
    let err = load_tokenizer(&missing).unwrap_err();
    assert!(err.contains("nope.json"), "{err}");
    std::fs::write(&missing, "{not a tokenizer").unwrap();
    let err = load_tokenizer(&missing).unwrap_err();
    assert!(err.contains("nope.json"), "{err}");
}

#[test]
fn validate_path_reads_a_file_and_reports_progress() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let text: String = (0..1000)
        .map(|i| format!("{{\"prompt\": \"p{i}\", \"completion\": \"c\"}}\n"))
        .collect();
    std::fs::write(&path, &text).unwrap();
    let mut last = 0;
    let r = validate_path(&path, &ValidationOptions::default(), &mut |n| {
        assert!(n >= last);
        last = n;
    })
    .unwrap();
    assert_eq!(last, text.len() as u64);
    assert_eq!(r.statistics.total_examples, 1000);
    assert!(r.training_ready);
    assert!(
        validate_path(
            &dir.path().join("missing.jsonl"),
            &ValidationOptions::default(),
            &mut |_| {}
        )
        .is_err()
    );
}

#[test]
fn sample_is_the_first_three_valid_examples() {
    let text = "oops\n{\"prompt\": \"1\", \"completion\": \"a\"}\n{\"prompt\": \"2\", \"completion\": \"b\"}\n{\"prompt\": \"3\", \"completion\": \"c\"}\n{\"prompt\": \"4\", \"completion\": \"d\"}\n";
    let r = check(text);
    let users: Vec<_> = r.sample.iter().map(|m| m[0].content.as_str()).collect();
    assert_eq!(users, ["1", "2", "3"]);
    assert!(!r.training_ready);
}

// ------------------------------------------------------------------ peers' own cases
// Files in engine/tests/fixtures/peers/ (their sources are named in its README.md).

fn peer(name: &str) -> ValidationReport {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/peers")
        .join(name);
    let opts = ValidationOptions {
        holdout_fraction: 0.0,
        ..ValidationOptions::default()
    };
    validate_path(&path, &opts, &mut |_| {}).unwrap()
}

fn of(r: &ValidationReport, severity: Severity) -> Vec<(u64, &str)> {
    r.issues
        .iter()
        .filter(|i| i.severity == severity)
        .map(|i| (i.line, i.error.as_str()))
        .collect()
}

/// OpenAI's own sample file: its 4th example goes system → assistant. A warning that says
/// what the trainer does and where templates refuse it; the file is ready.
#[test]
fn peers_openai_cookbook_toy_chat_file_is_ready() {
    let r = peer("openai_cookbook_toy_chat_fine_tuning.jsonl");
    assert!(r.training_ready, "{:#?}", r.issues);
    assert_eq!(r.statistics.error_count, 0, "{:#?}", r.issues);
    assert_eq!(r.statistics.total_examples, 5);
    let warnings = of(&r, Severity::Warning);
    let (line, text) = warnings
        .iter()
        .find(|(_, w)| w.contains("no user message"))
        .expect("a warning on the example with no user message");
    assert_eq!(*line, 4);
    assert!(text.contains("messages[1] is an assistant message with no user message before it; it is trained as written, the reply learned from only the system prompt"), "{text}");
    let i = r.issues.iter().find(|i| i.line == 4).unwrap();
    assert!(i.suggestion.contains("Llama 2, Mistral and Mixtral, Gemma"));
    // The banana example is long: that warning, and nothing else.
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
}

/// TRL's conversational prompt/completion, with text parts: the prompt's messages are the
/// context, the completion's assistant message the reply.
#[test]
fn peers_trl_conversational_prompt_completion() {
    let r = peer("trl_conversational_prompt_completion.jsonl");
    assert_clean(&r);
    assert!(r.training_ready);
    assert_eq!(r.format, Some(DatasetFormat::PromptCompletion));
    assert_eq!(
        r.sample[0],
        vec![
            msg("user", "What color is the sky?"),
            msg("assistant", "It is blue.")
        ]
    );
    assert_eq!(
        r.sample[2],
        vec![
            msg("system", "Answer briefly."),
            msg("user", "What color is grass?"),
            msg("assistant", "Green.")
        ]
    );
    // A prompt that ends with the assistant is no prompt for a reply.
    let r = check(
        r#"{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "completion": [{"role": "assistant", "content": "Again"}]}"#,
    );
    assert!(
        r.issues[0]
            .error
            .contains("prompt[1] and completion[0] are both assistant messages"),
        "{:#?}",
        r.issues
    );
}

/// TRL's stepwise supervision: process-reward data, refused as such.
#[test]
fn peers_trl_stepwise_supervision() {
    let r = peer("trl_stepwise_supervision.jsonl");
    assert!(!r.training_ready);
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert!(
        r.issues[0]
            .error
            .starts_with("this is process-reward data, not SFT data")
    );
}

/// LLaMA-Factory's v1 layout: `loss_weight` on every message, honoured (0 on a reply: not
/// trained), no warnings; 1,001 examples of it stay clean.
#[test]
fn peers_llama_factory_v1_loss_weight() {
    let r = peer("llama_factory_v1_sft.jsonl");
    assert_clean(&r);
    assert_eq!(r.sample[1].len(), 5);
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/peers/llama_factory_v1_sft.jsonl"),
    )
    .unwrap();
    let first = text.lines().next().unwrap();
    let many: String = (0..1001)
        .map(|i| first.replace("Hello,", &format!("Hello {i},")) + "\n")
        .collect();
    assert_clean(&check(&many));
    // Every reply at loss_weight 0: nothing to learn.
    let r = check(&first.replace("\"loss_weight\": 1.0", "\"loss_weight\": 0.0"));
    assert!(
        r.issues[0]
            .error
            .contains("has weight 0 (or loss_weight 0)")
    );
}

/// The same warning on many examples is one finding, with the count and the first lines.
#[test]
fn repeated_warnings_collapse_into_one() {
    let many: String = (0..1001)
        .map(|i| format!("{{\"messages\": [{{\"role\": \"user\", \"content\": \"q{i}\", \"lang\": \"en\"}}, {{\"role\": \"assistant\", \"content\": \"a\", \"lang\": \"en\"}}]}}\n"))
        .collect();
    let r = run(
        "data.jsonl",
        &many,
        &ValidationOptions {
            holdout_fraction: 0.0,
            ..ValidationOptions::default()
        },
    );
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert_eq!(r.statistics.warning_count, 2002);
    assert_eq!(r.issues[0].line, 1);
    assert_eq!(
        r.issues[0].error,
        "unknown key \"lang\" in messages[0]; it is ignored (the same 2002 times in the file, on lines 1, 2, 3, 4, 5, …)"
    );
}

/// LLaMA-Factory's reasoning/tool-use data: one file-level error naming the parts.
#[test]
fn peers_llama_factory_reasoning_and_tool_call_parts() {
    let r = peer("llama_factory_reason_tool_use.jsonl");
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert!(
        r.issues[0]
            .error
            .starts_with("this file uses content parts BrightRun does not read"),
        "{}",
        r.issues[0].error
    );
}

/// LLaMA-Factory's Alpaca `history`: earlier turns, before the instruction.
#[test]
fn peers_llama_factory_alpaca_history() {
    let r = peer("llama_factory_alpaca_history.json");
    assert_clean(&r);
    assert_eq!(
        r.sample[0],
        vec![
            msg("system", "You are an astronomer."),
            msg("user", "Name the planet closest to the sun."),
            msg("assistant", "Mercury."),
            msg("user", "The largest?"),
            msg("assistant", "Jupiter."),
            msg("user", "And the second?"),
            msg("assistant", "Mars.")
        ]
    );
}
