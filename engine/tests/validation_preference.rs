//! Preference and KTO files: every layout BrightRun trains on, from its project's own example
//! shape (`fixtures/preference/`, see its README), validated ready with the right figures;
//! their broken variants, each with a line-numbered error; the file-level findings (a length
//! bias, a KTO file with one label); and `datasets clean` on such a file.

use brightrun_engine::domain::{
    ChatMessage, DatasetFormat, DatasetStatus, PreferenceStatistics, Severity,
};
use brightrun_engine::paths::Paths;
use brightrun_engine::validation::{
    ValidationOptions, ValidationReport, in_validation_split, validate_path, validate_reader,
};
use brightrun_engine::{CleanOptions, Engine, NewDataset};

fn opts() -> ValidationOptions {
    ValidationOptions {
        holdout_fraction: 0.0,
        ..Default::default()
    }
}

fn fixture(name: &str) -> ValidationReport {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/preference")
        .join(name);
    validate_path(&path, &opts(), &mut |_| {}).unwrap()
}

fn check(text: &str) -> ValidationReport {
    validate_reader(text.as_bytes(), "data.jsonl", &opts(), &mut |_| {}).unwrap()
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
    }
}

fn ready(r: &ValidationReport, format: DatasetFormat) -> &PreferenceStatistics {
    assert_eq!(r.statistics.error_count, 0, "{:#?}", r.issues);
    assert_eq!(r.statistics.warning_count, 0, "{:#?}", r.issues);
    assert!(r.training_ready);
    assert_eq!(r.format, Some(format));
    r.statistics
        .preference
        .as_ref()
        .expect("preference statistics")
}

#[test]
fn every_layout_validates_ready_from_its_projects_own_example() {
    use DatasetFormat::{Kto, Preference};
    // (file, format, examples, desirable, undesirable)
    let cases = [
        ("trl_preference_standard.jsonl", Preference, 2, 0, 0),
        ("trl_preference_conversational.jsonl", Preference, 2, 0, 0),
        ("trl_implicit_prompt.jsonl", Preference, 2, 0, 0),
        ("chosen_messages.jsonl", Preference, 2, 0, 0),
        ("openai_preference.jsonl", Preference, 2, 0, 0),
        ("llama_factory_dpo_en_demo.json", Preference, 3, 0, 0),
        ("llama_factory_alpaca_preference.json", Preference, 2, 0, 0),
        ("trl_unpaired_preference.jsonl", Kto, 4, 2, 2),
        ("llama_factory_kto_en_demo.json", Kto, 2, 1, 1),
        ("llama_factory_kto_sharegpt.json", Kto, 2, 1, 1),
    ];
    for (file, format, n, desirable, undesirable) in cases {
        let r = fixture(file);
        let p = ready(&r, format);
        assert_eq!(r.statistics.total_examples, n, "{file}");
        assert_eq!(r.statistics.total_training_pairs, n, "{file}");
        assert_eq!(p.pairs, n, "{file}");
        assert_eq!(
            (p.desirable, p.undesirable),
            (desirable, undesirable),
            "{file}"
        );
        assert!(p.prompt_tokens > 0 && p.chosen_tokens > 0 && p.rejected_tokens > 0);
        assert!(p.sequence_tokens_max > 0 && p.sequence_tokens_max <= r.statistics.tokens_max);
        // The sample is the prompt followed by the chosen reply, which is the assistant's.
        let first = &r.sample[0];
        assert_eq!(first.last().unwrap().role, "assistant", "{file}");
        assert!(first.len() >= 2, "{file}: {first:?}");
    }
}

#[test]
fn the_statistics_of_a_preference_file() {
    // bytes/4 rounded up per message: (prompt, chosen, rejected) = (3, 2, 2) and (6, 2, 9).
    let r = fixture("trl_preference_standard.jsonl");
    let p = ready(&r, DatasetFormat::Preference);
    assert_eq!(
        *p,
        PreferenceStatistics {
            pairs: 2,
            prompt_tokens: 9,
            chosen_tokens: 4,
            rejected_tokens: 11,
            chosen_tokens_p50: 2,
            chosen_tokens_p95: 2,
            rejected_tokens_p50: 2,
            rejected_tokens_p95: 9,
            sequence_tokens_max: 15,
            chosen_longer_share: 0.0,
            desirable: 0,
            undesirable: 0,
        }
    );
    let s = &r.statistics;
    // The shared counts: prompt and both replies.
    assert_eq!(s.total_tokens, 24);
    assert_eq!((s.tokens_p50, s.tokens_p95, s.tokens_max), (7, 17, 17));
    assert_eq!(s.avg_turns_per_conversation, 3.0);
    assert_eq!(s.avg_tokens_per_turn, 4.0);
    assert_eq!(s.duplicate_examples, 0);
    assert_eq!(
        r.sample[0],
        [msg("user", "The sky is"), msg("assistant", " blue.")]
    );
}

#[test]
fn an_implicit_prompt_counts_its_prompt_once() {
    let r = fixture("trl_implicit_prompt.jsonl");
    let p = ready(&r, DatasetFormat::Preference);
    // (6, 3, 3) and (1 + 6 + 4, 1, 1).
    assert_eq!(
        (p.prompt_tokens, p.chosen_tokens, p.rejected_tokens),
        (17, 4, 4)
    );
    assert_eq!(r.statistics.total_tokens, 25);
    assert_eq!(p.sequence_tokens_max, 12);
    assert_eq!(
        r.sample[1],
        [
            msg("user", "Hi!"),
            msg("assistant", "Hello! How can I help?"),
            msg("user", "Name a prime."),
            msg("assistant", "7."),
        ]
    );
    // OpenAI's: the input's messages, then the preferred output.
    let r = fixture("openai_preference.jsonl");
    assert_eq!(
        r.sample[1],
        [
            msg("user", "What is the capital of France?"),
            msg("assistant", "Paris.")
        ]
    );
    // LLaMA-Factory's ShareGPT: the conversation, then the chosen turn.
    let r = fixture("llama_factory_dpo_en_demo.json");
    assert_eq!(r.sample[1].len(), 3);
    assert_eq!(r.sample[1][0].role, "system");
    assert_eq!(r.sample[2].len(), 4);
    // Alpaca: the instruction and its input, then the chosen reply.
    let r = fixture("llama_factory_alpaca_preference.json");
    assert_eq!(
        r.sample[0],
        [
            msg("user", "Translate to French.\nGood morning"),
            msg("assistant", "Bonjour")
        ]
    );
}

#[test]
fn the_statistics_of_a_kto_file() {
    // (prompt, reply): (3, 2) true, (3, 2) false, (6, 3) true, (6, 3) false.
    let r = fixture("trl_unpaired_preference.jsonl");
    let p = ready(&r, DatasetFormat::Kto);
    assert_eq!(
        *p,
        PreferenceStatistics {
            pairs: 4,
            prompt_tokens: 18,
            chosen_tokens: 5,
            rejected_tokens: 5,
            chosen_tokens_p50: 2,
            chosen_tokens_p95: 3,
            rejected_tokens_p50: 2,
            rejected_tokens_p95: 3,
            sequence_tokens_max: 9,
            chosen_longer_share: 0.0,
            desirable: 2,
            undesirable: 2,
        }
    );
    assert_eq!(r.statistics.total_tokens, 28);
    assert_eq!(
        r.sample[1],
        [msg("user", "The sky is"), msg("assistant", " green.")]
    );
    // LLaMA-Factory: all but the last message is the prompt.
    let r = fixture("llama_factory_kto_en_demo.json");
    assert_eq!(r.sample[1].len(), 4);
    assert_eq!(r.sample[1][3].content, "Buy more ads.");
}

/// A file of a good line, `bad` and another good line: one error, on line 2, containing
/// `error` and `suggestion`; the good lines still count.
fn broken(good: &str, bad: &str, error: &str, suggestion: &str) {
    let other = good.replace("sky", "sea");
    let r = check(&format!("{good}\n{bad}\n{other}\n"));
    let errors: Vec<_> = r
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{bad}: {:#?}", r.issues);
    let e = errors[0];
    assert_eq!(e.line, 2, "{bad}: {e:?}");
    assert!(
        e.error.contains(error),
        "{bad}: {:?} lacks {error:?}",
        e.error
    );
    assert!(
        e.suggestion.contains(suggestion),
        "{bad}: {:?} lacks {suggestion:?}",
        e.suggestion
    );
    assert!(!r.training_ready);
    assert_eq!(r.statistics.total_examples, 2, "{bad}");
}

#[test]
fn broken_explicit_prompt_pairs() {
    let good = r#"{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}"#;
    broken(
        good,
        r#"{"prompt": "The sun is", "chosen": " hot.", "rejected": " hot."}"#,
        "\"chosen\" and \"rejected\" are the same reply",
        "write a worse reply in \"rejected\"",
    );
    broken(
        good,
        r#"{"prompt": "The sun is", "chosen": "", "rejected": " cold."}"#,
        "\"chosen\" is empty",
        "",
    );
    broken(
        good,
        r#"{"prompt": "The sun is", "chosen": " hot.", "rejected": []}"#,
        "\"prompt\" is a string but \"rejected\" is an array: when \"prompt\" is a string, \"chosen\" and \"rejected\" are strings",
        "write all three as strings",
    );
    broken(
        good,
        r#"{"prompt": "The sun is", "chosen": 42, "rejected": " cold."}"#,
        "\"chosen\" is a number, not a string or a list of messages",
        "",
    );
    broken(
        good,
        r#"{"prompt": "The sun is", "chosen": " hot."}"#,
        "the example has no \"rejected\"",
        "{\"prompt\": …, \"chosen\": …, \"rejected\": …}",
    );
    let conv = r#"{"prompt": [{"role": "user", "content": "What color is the sky?"}], "chosen": [{"role": "assistant", "content": "It is blue."}], "rejected": [{"role": "assistant", "content": "It is green."}]}"#;
    broken(
        conv,
        r#"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "user", "content": "Hello"}], "rejected": [{"role": "assistant", "content": "Go."}]}"#,
        "chosen[0] is a user message; \"chosen\" holds the assistant's reply",
        "",
    );
    broken(
        conv,
        r#"{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yes?"}], "chosen": [{"role": "assistant", "content": "Hello"}], "rejected": [{"role": "assistant", "content": "Go."}]}"#,
        "prompt[1] and chosen[0] are both assistant messages",
        "",
    );
    broken(
        conv,
        r#"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello"}], "rejected": [{"role": "assistant"}]}"#,
        "rejected[0] has no \"content\"",
        "",
    );
    broken(
        conv,
        r#"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello"}], "rejected": []}"#,
        "\"rejected\" is an empty list",
        "",
    );
    broken(
        conv,
        r#"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": "Hello", "rejected": [{"role": "assistant", "content": "Go."}]}"#,
        "\"prompt\" is a list of messages but \"chosen\" is a string",
        "",
    );
    broken(
        conv,
        r#"{"prompt": [{"role": "system", "content": "Be nice."}], "chosen": [{"role": "assistant", "content": "Hello"}], "rejected": [{"role": "assistant", "content": "Go."}]}"#,
        "the prompt is empty: there is no user message before the reply",
        "",
    );
}

#[test]
fn broken_implicit_prompt_pairs() {
    let good = r#"{"chosen": [{"role": "user", "content": "What color is the sky?"}, {"role": "assistant", "content": "It is blue."}], "rejected": [{"role": "user", "content": "What color is the sky?"}, {"role": "assistant", "content": "It is green."}]}"#;
    broken(
        good,
        r#"{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "rejected": [{"role": "user", "content": "Hey"}, {"role": "assistant", "content": "Go."}]}"#,
        "\"chosen\" and \"rejected\" do not share their prompt: they differ at message 0 (chosen[0] and rejected[0] differ)",
        "write the prompt apart",
    );
    broken(
        good,
        r#"{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "What?"}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go."}]}"#,
        "they differ at message 1",
        "",
    );
    broken(
        good,
        r#"{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#,
        "\"chosen\" and \"rejected\" are the same reply",
        "",
    );
    broken(
        good,
        r#"{"chosen": [{"role": "assistant", "content": "Hello"}], "rejected": [{"role": "assistant", "content": "Go."}]}"#,
        "\"chosen\" holds only assistant messages: there is no prompt before the reply",
        "",
    );
    broken(
        good,
        r#"{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "rejected": [{"role": "user", "content": "Hi"}]}"#,
        "\"rejected\" ends with a user message (rejected[0])",
        "",
    );
    broken(
        good,
        r#"{"chosen": "The sky is blue.", "rejected": "The sky is green."}"#,
        "\"chosen\" and \"rejected\" are text and there is no \"prompt\"",
        "add the prompt",
    );
    broken(
        good,
        r#"{"chosen": {"role": "user"}, "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go."}]}"#,
        "\"chosen\" is an object, not an array",
        "",
    );
    let good = r#"{"chosen_messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}], "rejected_messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "No."}]}"#;
    broken(
        good,
        r#"{"chosen_messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}], "rejected_messages": [{"role": "system", "content": "Be rude."}, {"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "No."}]}"#,
        "\"chosen_messages\" and \"rejected_messages\" do not share their prompt: they differ at message 0",
        "",
    );
    broken(
        good,
        r#"{"chosen_messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}]}"#,
        "the example has no \"rejected_messages\"",
        "",
    );
}

#[test]
fn broken_openai_sharegpt_and_alpaca_pairs() {
    let openai = r#"{"input": {"messages": [{"role": "user", "content": "What color is the sky?"}]}, "preferred_output": [{"role": "assistant", "content": "Blue."}], "non_preferred_output": [{"role": "assistant", "content": "Green."}]}"#;
    broken(
        openai,
        r#"{"input": "Hi", "preferred_output": [{"role": "assistant", "content": "Hello"}], "non_preferred_output": [{"role": "assistant", "content": "Go."}]}"#,
        "\"input\" is a string, not {\"messages\": [...]}",
        "\"input\": {\"messages\"",
    );
    broken(
        openai,
        r#"{"input": {"messages": [{"role": "user", "content": "Hi"}]}, "preferred_output": [{"role": "assistant", "content": "Hello"}], "non_preferred_output": [{"role": "assistant", "content": "Hello"}]}"#,
        "\"preferred_output\" and \"non_preferred_output\" are the same reply",
        "",
    );
    broken(
        openai,
        r#"{"input": {"messages": [{"role": "user", "content": "Hi"}]}, "preferred_output": [{"role": "assistant", "content": "Hello"}]}"#,
        "the example has no \"non_preferred_output\"",
        "",
    );
    broken(
        openai,
        r#"{"input": {"messages": [{"role": "user", "content": "Hi"}]}, "preferred_output": [{"role": "assistant", "content": "  "}], "non_preferred_output": [{"role": "assistant", "content": "Go."}]}"#,
        "preferred_output[0].content is empty",
        "",
    );
    let sharegpt = r#"{"conversations": [{"from": "human", "value": "What color is the sky?"}], "chosen": {"from": "gpt", "value": "Blue."}, "rejected": {"from": "gpt", "value": "Green."}}"#;
    broken(
        sharegpt,
        r#"{"conversations": [{"from": "human", "value": "Hi"}], "chosen": "Hello", "rejected": {"from": "gpt", "value": "Go."}}"#,
        "\"chosen\" is a string, not a turn {\"from\": \"gpt\", \"value\": …}",
        "",
    );
    broken(
        sharegpt,
        r#"{"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "human", "value": "Hello"}, "rejected": {"from": "gpt", "value": "Go."}}"#,
        "\"chosen\".from is \"human\"; a reply is the assistant's turn",
        "",
    );
    broken(
        sharegpt,
        r#"{"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello"}, "rejected": {"from": "gpt", "value": ""}}"#,
        "\"rejected\".value is empty",
        "",
    );
    broken(
        sharegpt,
        r#"{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yes?"}], "chosen": {"from": "gpt", "value": "Hello"}, "rejected": {"from": "gpt", "value": "Go."}}"#,
        "conversations[1] and \"chosen\" are both assistant messages",
        "",
    );
    let alpaca =
        r#"{"instruction": "Name the sky's colour.", "chosen": "Blue.", "rejected": "Green."}"#;
    broken(
        alpaca,
        r#"{"instruction": "Name a colour.", "chosen": "Red.", "rejected": 7}"#,
        "\"rejected\" is a number, not a string",
        "",
    );
    broken(
        alpaca,
        r#"{"instruction": "Name a colour.", "input": "", "chosen": "Red.", "rejected": "Red."}"#,
        "are the same reply",
        "",
    );
}

#[test]
fn broken_kto_examples() {
    let good = r#"{"prompt": "The sky is", "completion": " blue.", "label": true}"#;
    let text = |bad: &str| {
        let other = r#"{"prompt": "The sea is", "completion": " red.", "label": false}"#;
        check(&format!("{good}\n{bad}\n{other}\n"))
    };
    for (bad, error) in [
        (
            r#"{"prompt": "The sun is", "completion": " hot.", "label": "true"}"#,
            "\"label\" is a string (\"true\"), not true or false",
        ),
        (
            r#"{"prompt": "The sun is", "completion": " hot.", "kto_tag": 1}"#,
            "\"kto_tag\" is a number (1), not true or false",
        ),
        (
            r#"{"prompt": "The sun is", "completion": " hot.", "label": true, "kto_tag": false}"#,
            "\"label\" and \"kto_tag\" disagree",
        ),
        (
            r#"{"prompt": "The sun is", "completion": "", "label": true}"#,
            "\"completion\" is empty",
        ),
        (
            r#"{"prompt": "The sun is", "label": true}"#,
            "the example has no \"completion\"",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}], "label": true}"#,
            "the conversation ends with a user message (messages[2]); it must end with the assistant's reply",
        ),
        (
            r#"{"conversations": [{"from": "human", "value": "Hi"}], "kto_tag": false}"#,
            "the conversation has no assistant message",
        ),
        (
            r#"{"label": true, "text": "Hello"}"#,
            "the example has a KTO label but no prompt and reply",
        ),
    ] {
        let r = text(bad);
        let errors: Vec<_> = r
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .collect();
        assert_eq!(errors.len(), 1, "{bad}: {:#?}", r.issues);
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0].error.contains(error),
            "{bad}: {:?} lacks {error:?}",
            errors[0].error
        );
        assert_eq!(r.format, Some(DatasetFormat::Kto));
        assert!(!r.training_ready);
    }
}

#[test]
fn a_broken_element_of_a_json_array_is_named() {
    let text = r#"[
  {"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello"}, "rejected": {"from": "gpt", "value": "Go."}},
  {"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Same"}, "rejected": {"from": "gpt", "value": "Same"}}
]"#;
    let r = validate_reader(text.as_bytes(), "dpo.json", &opts(), &mut |_| {}).unwrap();
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert_eq!(r.issues[0].line, 3);
    assert!(
        r.issues[0]
            .error
            .starts_with("element 1: \"chosen\" and \"rejected\" are the same reply"),
        "{}",
        r.issues[0].error
    );
}

fn pairs(n: usize, chosen: impl Fn(usize) -> String, rejected: impl Fn(usize) -> String) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"prompt\": \"Question {i}?\", \"chosen\": \"{}\", \"rejected\": \"{}\"}}\n",
                chosen(i),
                rejected(i)
            )
        })
        .collect()
}

fn warnings(r: &ValidationReport) -> Vec<String> {
    r.issues
        .iter()
        .filter(|i| i.severity == Severity::Warning)
        .map(|i| i.error.clone())
        .collect()
}

#[test]
fn chosen_replies_systematically_longer_are_a_length_bias() {
    // 22 of 25 chosen replies are 10 tokens, the rejected ones 2: mean (22 × 10 + 3 × 1) / 25.
    let long = |i: usize| if i < 22 { "x".repeat(40) } else { "x".into() };
    let r = check(&pairs(25, long, |_| "y".repeat(8)));
    assert_eq!(r.statistics.error_count, 0, "{:#?}", r.issues);
    assert!(r.training_ready);
    assert_eq!(
        warnings(&r),
        [
            "chosen is the longer reply in 88% of 25 pairs (mean 9 vs 2 tokens, estimated): DPO may learn length rather than quality"
        ]
    );
    let w = &r.issues[0];
    assert_eq!(w.line, 1);
    assert!(
        w.suggestion.contains("75% of at least 20"),
        "{}",
        w.suggestion
    );
    let p = r.statistics.preference.as_ref().unwrap();
    assert_eq!(p.chosen_longer_share, 0.88);
    // The other way round: the rejected replies are the longer.
    let r = check(&pairs(20, |_| "y".into(), |_| "x".repeat(40)));
    let w = warnings(&r);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("rejected is the longer reply in 100% of 20 pairs (mean 1 vs 10 tokens"),
        "{w:?}"
    );
    // Under the threshold: too few pairs, or not lopsided enough.
    assert!(warnings(&check(&pairs(19, |_| "x".repeat(40), |_| "y".into()))).is_empty());
    let some = |i: usize| if i < 14 { "x".repeat(40) } else { "x".into() };
    let r = check(&pairs(20, some, |_| "y".repeat(8)));
    assert!(warnings(&r).is_empty(), "{:#?}", r.issues);
    assert_eq!(r.statistics.preference.unwrap().chosen_longer_share, 0.7);
}

#[test]
fn kto_desirable_replies_longer_on_the_same_prompts_are_a_length_bias() {
    let text: String = (0..20)
        .flat_map(|i| {
            [
                format!(
                    "{{\"prompt\": \"Q{i}\", \"completion\": \"{}\", \"label\": true}}\n",
                    "x".repeat(40)
                ),
                format!("{{\"prompt\": \"Q{i}\", \"completion\": \"short\", \"label\": false}}\n"),
            ]
        })
        .collect();
    let r = check(&text);
    assert_eq!(r.statistics.error_count, 0);
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("the desirable reply is the longer reply in 100% of 20 prompts that have both a desirable and an undesirable reply (mean 10 vs 2 tokens"),
        "{w:?}"
    );
    let p = r.statistics.preference.unwrap();
    assert_eq!(
        (p.desirable, p.undesirable, p.chosen_longer_share),
        (20, 20, 1.0)
    );
}

#[test]
fn a_kto_file_with_one_label_is_refused() {
    let line = |i: u32, label: bool| {
        format!("{{\"prompt\": \"Q{i}\", \"completion\": \"A{i}\", \"label\": {label}}}\n")
    };
    let r = check(&(1..=3).map(|i| line(i, true)).collect::<String>());
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    let e = &r.issues[0];
    assert_eq!((e.line, e.severity), (1, Severity::Error));
    assert_eq!(
        e.error,
        "all 3 examples are labelled desirable (true): KTO needs both desirable and undesirable examples"
    );
    assert!(
        e.suggestion.contains("train DPO") && e.suggestion.contains("SFT"),
        "{}",
        e.suggestion
    );
    assert!(!r.training_ready);
    assert_eq!(r.format, Some(DatasetFormat::Kto));
    let p = r.statistics.preference.as_ref().unwrap();
    assert_eq!((p.desirable, p.undesirable), (3, 0));
    // All undesirable.
    let r = check(&line(1, false));
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert!(
        r.issues[0]
            .error
            .starts_with("its one example is labelled undesirable (false)")
    );
    assert!(!r.training_ready);
}

#[test]
fn duplicates_over_long_pairs_and_the_split() {
    let a = r#"{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}"#;
    let b = r#"{"prompt": "The sky is", "chosen": " blue.", "rejected": " red."}"#;
    let swapped = r#"{"prompt": "The sky is", "chosen": " green.", "rejected": " blue."}"#;
    let r = check(&format!("{a}\n{b}\n{swapped}\n{a}\n"));
    assert_eq!(r.statistics.duplicate_examples, 1, "{:#?}", r.issues);
    assert!(r.issues[0].error.contains("line 4 repeats line 1"));
    // The sequence is the prompt and the longer reply: 3 + 2 here, 3 + 10 there.
    let long = format!(
        r#"{{"prompt": "The sky is", "chosen": " blue.", "rejected": "{}"}}"#,
        "x".repeat(40)
    );
    let o = ValidationOptions {
        max_seq_length: 12,
        ..opts()
    };
    let r = validate_reader(
        format!("{a}\n{long}\n").as_bytes(),
        "d.jsonl",
        &o,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.statistics.examples_over_max_seq_length, 1);
    assert!(r.issues[0].error.contains("line 2"), "{:#?}", r.issues);
    // The hold-out split: PROTOCOL.md's rule on the record index.
    let text = pairs(40, |i| format!("c{i}"), |i| format!("r{i}"));
    let o = ValidationOptions {
        holdout_fraction: 0.25,
        ..opts()
    };
    let r = validate_reader(text.as_bytes(), "d.jsonl", &o, &mut |_| {}).unwrap();
    let validation = (0..40)
        .filter(|&i| in_validation_split(i, 42, 0.25))
        .count() as u64;
    assert_eq!(r.statistics.total_validation_pairs, validation);
    assert_eq!(r.statistics.total_training_pairs, 40 - validation);
}

#[test]
fn media_in_preference_data_is_still_refused() {
    let r = check(concat!(
        r#"{"prompt": "<image>What is this?", "chosen": "A dog.", "rejected": "A cat."}"#,
        "\n"
    ));
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert!(
        r.issues[0].error.contains("multimodal"),
        "{}",
        r.issues[0].error
    );
    assert_eq!(r.format, Some(DatasetFormat::Preference));
    assert!(!r.training_ready);
    let r = check(concat!(
        r#"{"conversations": [{"from": "human", "value": "What is this?"}], "chosen": {"from": "gpt", "value": "A dog."}, "rejected": {"from": "gpt", "value": "A cat."}, "images": ["a.png"]}"#,
        "\n"
    ));
    assert!(
        r.issues[0].error.contains("an \"images\" key"),
        "{}",
        r.issues[0].error
    );
    assert!(!r.training_ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_a_preference_file_drops_the_broken_pairs_and_duplicates() {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::open(Paths::under(home.path())).unwrap();
    let file = home.path().join("prefs.jsonl");
    let good =
        |i: u32| format!(r#"{{"prompt": "Q{i}", "chosen": "good {i}", "rejected": "bad {i}"}}"#);
    let lines = [
        good(1),
        r#"{"prompt": "Q", "chosen": "same", "rejected": "same"}"#.to_string(),
        good(2),
        good(1),
        r#"{"prompt": "Q", "chosen": "fine"}"#.to_string(),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let d = engine
        .add_dataset(&file, NewDataset::default(), &|_, _| {})
        .await
        .unwrap();
    assert_eq!(d.status, DatasetStatus::Error);
    assert_eq!(d.format, Some(DatasetFormat::Preference));
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
    assert!(clean.training_ready);
    assert_eq!(clean.format, Some(DatasetFormat::Preference));
    assert_eq!(report.kept, 2);
    assert_eq!(report.duplicates_dropped, 1);
    let dropped: Vec<(u64, &str)> = report
        .dropped
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(dropped.len(), 3, "{dropped:?}");
    assert_eq!(dropped[0].0, 2);
    assert!(dropped[0].1.contains("are the same reply"), "{dropped:?}");
    assert_eq!(dropped[1], (4, "an exact duplicate of line 1"));
    assert_eq!(dropped[2].0, 5);
    assert!(dropped[2].1.contains("no \"rejected\""), "{dropped:?}");
    let stats = clean.statistics.unwrap();
    assert_eq!(stats.preference.unwrap().pairs, 2);

    // A KTO array file keeps each record's layout, one per line.
    let file = home.path().join("kto.json");
    std::fs::write(
        &file,
        r#"[
  {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "label": true},
  {"messages": [{"role": "user", "content": "Hi"}], "label": true},
  {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}], "label": false}
]"#,
    )
    .unwrap();
    let d = engine
        .add_dataset(&file, NewDataset::default(), &|_, _| {})
        .await
        .unwrap();
    assert_eq!(d.status, DatasetStatus::Error);
    let (clean, report) = engine
        .clean_dataset(d.id, CleanOptions::default())
        .await
        .unwrap();
    assert_eq!(report.kept, 2);
    assert_eq!(
        clean.status,
        DatasetStatus::Ready,
        "{:?}",
        clean.validation_errors
    );
    assert_eq!(clean.format, Some(DatasetFormat::Kto));
    let p = clean.statistics.unwrap().preference.unwrap();
    assert_eq!((p.desirable, p.undesirable), (1, 1));
}
