//! Every class of problem: its line, its reason and its suggestion.

use brightrun_engine::domain::{DatasetFormat, Severity, ValidationIssue};
use brightrun_engine::validation::{ValidationOptions, ValidationReport, validate_reader};

fn run_bytes(name: &str, bytes: &[u8], opts: &ValidationOptions) -> ValidationReport {
    validate_reader(bytes, name, opts, &mut |_| {}).unwrap()
}

/// No hold-out: a small file's only valid example may otherwise land in the validation
/// split, which is an error of its own (tested below).
fn opts() -> ValidationOptions {
    ValidationOptions {
        holdout_fraction: 0.0,
        ..Default::default()
    }
}

fn check(text: &str) -> ValidationReport {
    run_bytes("data.jsonl", text.as_bytes(), &opts())
}

const GOOD: &str = r#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#;
const GOOD2: &str =
    r#"{"messages": [{"role": "user", "content": "Yo"}, {"role": "assistant", "content": "Hey"}]}"#;

/// A file of good lines around `bad` (on line 2); returns the one issue, which is on line 2.
fn one(bad: &str) -> ValidationIssue {
    let r = check(&format!("{GOOD}\n{bad}\n{GOOD2}\n"));
    assert_eq!(r.issues.len(), 1, "{bad}\n{:#?}", r.issues);
    let issue = r.issues[0].clone();
    assert_eq!(issue.line, 2, "{issue:?}");
    assert!(!issue.suggestion.is_empty());
    if issue.severity == Severity::Error {
        assert!(!r.training_ready);
        assert_eq!(r.statistics.error_count, 1);
        assert_eq!(r.statistics.total_examples, 2);
    } else {
        assert!(r.training_ready);
        assert_eq!(r.statistics.warning_count, 1);
        assert_eq!(r.statistics.total_examples, 3);
    }
    issue
}

fn has(issue: &ValidationIssue, error: &str, suggestion: &str) {
    assert!(
        issue.error.contains(error),
        "error {:?} lacks {error:?}",
        issue.error
    );
    assert!(
        issue.suggestion.contains(suggestion),
        "suggestion {:?} lacks {suggestion:?}",
        issue.suggestion
    );
}

fn error(bad: &str, error: &str, suggestion: &str) {
    let i = one(bad);
    assert_eq!(i.severity, Severity::Error, "{i:?}");
    has(&i, error, suggestion);
}

fn warning(bad: &str, error: &str, suggestion: &str) {
    let i = one(bad);
    assert_eq!(i.severity, Severity::Warning, "{i:?}");
    has(&i, error, suggestion);
}

#[test]
fn invalid_utf8() {
    let mut bytes = format!("{GOOD}\n").into_bytes();
    bytes.extend_from_slice(
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"caf\xe9\"}, {\"role\": \"assistant\", \"content\": \"x\"}]}\n",
    );
    bytes.extend_from_slice(format!("{GOOD2}\n").as_bytes());
    let r = run_bytes("d.jsonl", &bytes, &opts());
    assert_eq!(r.statistics.error_count, 1);
    let i = &r.issues[0];
    assert_eq!(i.line, 2);
    has(i, "not valid UTF-8: byte 0xE9 at column 47", "iconv");
    assert_eq!(r.statistics.total_examples, 2);
}

#[test]
fn invalid_json() {
    error(
        r#"{"messages": [{"role": "user", "content": "Hi"}"#,
        "not valid JSON: EOF while parsing",
        "complete on one line",
    );
    error(
        r#"{"messages": [], }"#,
        "trailing comma",
        "remove the comma",
    );
    error(
        r#"{'messages': []}"#,
        "key must be a string (column 2)",
        "Python dict",
    );
    error(&format!("{GOOD} {GOOD}"), "trailing characters", "own line");
    error(
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\tb\"}]}",
        "control character",
        "\\t",
    );
    error(
        r#"{"messages": [{"role": "user", "content": NaN}]}"#,
        "expected value",
        "NaN",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "\ud800"}]}"#,
        "surrogate",
        "fix the JSON",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "\q"}]}"#,
        "invalid escape",
        "fix the JSON near column 45",
    );
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    error(
        &format!("{{\"messages\": {deep}}}"),
        "recursion limit",
        "128",
    );
}

#[test]
fn not_an_object() {
    error(
        r#"["user", "assistant"]"#,
        "is an array, not a JSON object",
        "OpenAI chat",
    );
    error(
        r#""just text""#,
        "is a string, not a JSON object",
        "messages",
    );
    error("42", "is a number, not a JSON object", "");
}

#[test]
fn unknown_shape() {
    error(
        r#"{"question": "q", "answer": "a"}"#,
        "keys \"question\", \"answer\", which match none of the supported formats",
        "like the rest of the file, as OpenAI chat",
    );
    error(
        r#"{"instruction": "Do it"}"#,
        "no \"output\": it looks like Alpaca",
        "add \"output\"",
    );
    error(
        r#"{"current_user_input": "hi"}"#,
        "no \"target_response\"",
        "BrightRun flat",
    );
}

#[test]
fn wrong_types() {
    error(
        r#"{"messages": {"role": "user"}}"#,
        "\"messages\" is an object, not an array",
        "",
    );
    error(
        r#"{"messages": ["hi", {"role": "assistant", "content": "x"}]}"#,
        "messages[0] is a string, not an object",
        "\"role\"",
    );
    error(
        r#"{"messages": [{"role": 1, "content": "a"}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0].role is a number, not a string",
        "system, user, assistant or tool",
    );
    error(
        r#"{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0].content is a number, not a string or a list of text parts",
        "string",
    );
    error(
        r#"{"messages": [{"role": "user", "content": [{"type": "text", "txt": "x"}]}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0].content[0] is not a text part",
        "{\"type\": \"text\", \"text\": …}",
    );
    error(
        r#"{"messages": [{"content": "a"}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0] has no \"role\"",
        "",
    );
    error(
        r#"{"messages": [{"role": "user"}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0] has no \"content\"",
        "",
    );
    error(
        r#"{"messages": []}"#,
        "\"messages\" is an empty list",
        "user message",
    );
}

#[test]
fn wrong_types_in_other_formats() {
    let r = check(concat!(
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n",
        "{\"prompt\": [\"a\"], \"completion\": \"b\"}\n",
        "{\"prompt\": \"a\", \"completion\": null}\n",
    ));
    assert_eq!(r.statistics.error_count, 2);
    has(
        &r.issues[0],
        "\"prompt\" is a list holding a string, not messages or text parts",
        "string",
    );
    assert_eq!(r.issues[0].line, 2);
    has(&r.issues[1], "\"completion\" is null, not a string", "");
    assert_eq!(r.issues[1].line, 3);
    let r = check(concat!(
        "{\"instruction\": \"a\", \"output\": \"b\"}\n",
        "{\"instruction\": \"a\", \"input\": 3, \"output\": \"b\"}\n",
    ));
    has(&r.issues[0], "\"input\" is a number", "");
    let r = check(concat!(
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n",
        "{\"system\": 1, \"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n",
    ));
    has(&r.issues[0], "\"system\" is a number, not a string", "");
}

#[test]
fn unknown_roles() {
    error(
        r#"{"messages": [{"role": "bot", "content": "a"}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0].role is \"bot\", which is not a known role",
        "system, user, assistant or tool",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}, {"role": "assistant", "content": "c"}]}"#,
        "messages[1] is a tool result, but no earlier assistant message made a call",
        "matching tool call",
    );
    let r = check(
        r#"{"turns": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}, {"role": "assistant", "content": "c"}]}"#,
    );
    has(
        &r.issues[0],
        "turns[1].role is \"tool\"",
        "tool calls are read from OpenAI chat",
    );
    let r = check(concat!(
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n",
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"bard\", \"value\": \"a\"}]}\n",
    ));
    assert_eq!(r.issues[0].line, 2);
    has(
        &r.issues[0],
        "conversations[1].from is \"bard\"",
        "human, gpt, system, function_call or observation",
    );
}

#[test]
fn empty_content() {
    error(
        r#"{"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0].content is empty (user message)",
        "write the message",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]}"#,
        "messages[1].content is empty (assistant message)",
        "",
    );
    warning(
        r#"{"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0] is an empty system message",
        "",
    );
    let r = check(
        "{\"prompt\": \"p\", \"completion\": \"c\"}\n{\"prompt\": \"p\", \"completion\": \"\"}\n",
    );
    has(&r.issues[0], "\"completion\" is empty", "");
    let r = check(
        "{\"instruction\": \"p\", \"output\": \"c\"}\n{\"instruction\": \"\", \"input\": \"\", \"output\": \"c\"}\n",
    );
    has(
        &r.issues[0],
        "\"instruction\" is empty and there is no \"input\"",
        "",
    );
}

#[test]
fn role_order() {
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "b"}]}"#,
        "messages[1] is a system message; only the first message may be one",
        "move the system prompt",
    );
    // OpenAI's cookbook calls these warnings, and they are trainable.
    warning(
        r#"{"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "b"}]}"#,
        "messages[1] is an assistant message with no user message before it; it is trained as written",
        "strict user/assistant alternation (Llama 2, Mistral and Mixtral, Gemma)",
    );
    error(
        r#"{"messages": [{"role": "system", "content": "s"}, {"role": "tool", "content": "b"}, {"role": "assistant", "content": "c"}]}"#,
        "no earlier assistant message made a call",
        "",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]}"#,
        "messages[0] and messages[1] are both user messages; user and assistant must alternate",
        "merge the two",
    );
    warning(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}"#,
        "ends with a user message (messages[2]) that has no reply; the trainer drops it and trains the assistant replies before it",
        "add the assistant's reply",
    );
    error(
        r#"{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}]}"#,
        "has no assistant message and ends with a user message (messages[1]); it must end with the assistant's reply",
        "add the assistant's reply",
    );
    error(
        r#"{"messages": [{"role": "system", "content": "s"}]}"#,
        "only a system message",
        "",
    );
    let r = check(concat!(
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n",
        "{\"system\": \"S\", \"conversations\": [{\"from\": \"system\", \"value\": \"S2\"}, {\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n",
    ));
    has(&r.issues[0], "conversations[0] is a system message", "");
}

#[test]
fn unknown_keys_are_warnings() {
    warning(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "id": 7}"#,
        "unknown key \"id\"; it is ignored",
        "\"messages\"",
    );
    warning(
        r#"{"messages": [{"role": "user", "content": "a", "nmae": "x"}, {"role": "assistant", "content": "b"}]}"#,
        "unknown key \"nmae\" in messages[0]",
        "check its spelling",
    );
    // Alpaca's "history" is earlier turns (as LLaMA-Factory reads it), not an unknown key.
    let r = check(concat!(
        "{\"instruction\": \"a\", \"output\": \"b\"}\n",
        "{\"instruction\": \"a\", \"output\": \"b\", \"history\": [[\"q\", \"a\"]]}\n",
    ));
    assert!(r.issues.is_empty(), "{:#?}", r.issues);
    assert_eq!(r.sample[1].len(), 4);
}

#[test]
fn weights() {
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0.5}]}"#,
        "messages[1].weight is 0.5; OpenAI's weight is 0 (do not train on this reply) or 1 (train on it), not a scale",
        "\"weight\": 1 to train on this reply",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 2}]}"#,
        "messages[1].weight is 2; OpenAI's weight is 0",
        "to make an example count more, repeat it",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": "1"}]}"#,
        "messages[1].weight is the string \"1\"; it must be the number 0 or 1, without quotes",
        "",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": true}]}"#,
        "messages[1].weight is true, not the number 0 or 1",
        "",
    );
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0}]}"#,
        "every assistant message has weight 0",
        "\"weight\": 1",
    );
    // OpenAI's rule: weight on assistant messages only.
    error(
        r#"{"messages": [{"role": "user", "content": "a", "weight": 1}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0].weight is set on a user message; OpenAI allows \"weight\" on assistant messages only",
        "remove",
    );
    error(
        r#"{"messages": [{"role": "system", "content": "s", "weight": 0}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0].weight is set on a system message",
        "remove",
    );
    // LLaMA-Factory's loss_weight: 0 on the prompt side is its convention, 1 there is ignored.
    let r = check(
        r#"{"messages": [{"role": "user", "content": "a", "loss_weight": 0.0}, {"role": "assistant", "content": "b", "loss_weight": 1.0}]}"#,
    );
    assert!(r.issues.is_empty(), "{:#?}", r.issues);
    error(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "loss_weight": 0}]}"#,
        "every assistant message has weight 0 (or loss_weight 0)",
        "",
    );
    warning(
        r#"{"messages": [{"role": "user", "content": "a", "loss_weight": 1}, {"role": "assistant", "content": "b"}]}"#,
        "messages[0].loss_weight is 1 on a user message; BrightRun trains assistant messages only",
        "loss_weight 0",
    );
}

#[test]
fn mixed_formats() {
    let r = check(&format!(
        "{GOOD}\n{{\"instruction\": \"a\", \"output\": \"b\"}}\n{GOOD2}\n"
    ));
    assert_eq!(r.format, Some(DatasetFormat::OpenaiChat));
    assert_eq!(r.statistics.error_count, 1);
    let i = &r.issues[0];
    assert_eq!(i.line, 2);
    has(
        i,
        "this example is Alpaca but the file is OpenAI chat (as detected from line 1)",
        "convert it to OpenAI chat",
    );
    // The first *valid* example fixes the format; an earlier broken example of another
    // format is reported as mixed too, in line order.
    let r = check(concat!(
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}]}\n",
        "{\"prompt\": \"p\", \"completion\": \"c\"}\n",
        "{\"prompt\": \"q\", \"completion\": \"d\"}\n",
    ));
    assert_eq!(r.format, Some(DatasetFormat::PromptCompletion));
    assert_eq!(r.statistics.error_count, 2, "{:#?}", r.issues);
    assert!(r.issues.iter().all(|i| i.line == 1));
    assert!(r.issues.iter().any(|i| {
        i.error
            .contains("ShareGPT but the file is prompt/completion (as detected from line 2)")
    }));
}

#[test]
fn binary_files_get_one_verdict() {
    let mut bytes = format!("{GOOD}\n").into_bytes();
    bytes.extend((0..100_000u32).map(|i| (i * 7919 % 251) as u8));
    let r = run_bytes("d.jsonl", &bytes, &opts());
    assert_eq!(r.statistics.error_count, 1, "{:#?}", r.issues);
    assert_eq!(r.issues.len(), 1);
    assert_eq!(r.issues[0].line, 2);
    has(
        &r.issues[0],
        "the file looks binary: it holds a NUL byte",
        "JSONL text",
    );
    assert!(!r.training_ready);
    assert_eq!(r.statistics.total_examples, 0);

    let gz = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3];
    let r = run_bytes("d.jsonl.gz", &gz, &opts());
    assert_eq!(r.issues.len(), 1);
    has(&r.issues[0], "gzip-compressed", "decompress");

    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(GOOD.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let r = run_bytes("d.jsonl", &utf16, &opts());
    assert_eq!(r.issues.len(), 1);
    has(&r.issues[0], "UTF-16", "iconv");
    // UTF-16 without a byte order mark.
    let r = run_bytes("d.jsonl", &utf16[2..], &opts());
    assert_eq!(r.issues.len(), 1);
    has(&r.issues[0], "UTF-16", "UTF-8");
    // Three stray bytes that start like a UTF-16 byte order mark are no UTF-16 text.
    let r = run_bytes("d.jsonl", b"\xff\xfex", &opts());
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert!(!r.issues[0].error.contains("UTF-16"), "{:?}", r.issues[0]);
    has(&r.issues[0], "not valid UTF-8: byte 0xFF", "UTF-8");

    let r = run_bytes("d.jsonl", b"PAR1\x15\x04", &opts());
    has(&r.issues[0], "Parquet", "pandas");
    let r = run_bytes("d.csv", b"prompt,completion\nhi,there\n", &opts());
    assert_eq!(r.issues.len(), 1);
    has(&r.issues[0], ".csv text, not JSONL", "to_json");
}

#[test]
fn empty_files() {
    for text in ["", "\n\n  \r\n", "\u{feff}", "{\"_meta\": {\"v\": 1}}\n"] {
        let r = check(text);
        assert_eq!(r.statistics.error_count, 1, "{text:?}");
        let i = &r.issues[0];
        assert_eq!(i.line, 1);
        assert_eq!(i.error, "the file holds no examples");
        has(i, "", "one JSON object per line");
        assert!(!r.training_ready);
        assert_eq!(r.format, None);
    }
    let r = run_bytes("d.json", b"[]", &opts());
    assert_eq!(r.issues[0].error, "the file holds no examples");
}

#[test]
fn json_array_structure_problems() {
    let opts = opts();
    let r = run_bytes(
        "d.json",
        b"[{\"prompt\": \"p\", \"completion\": \"c\"},\n {\"prompt\": \"q\", \"completion\": \"d\"},\n]",
        &opts,
    );
    assert_eq!(r.statistics.error_count, 1);
    assert_eq!(r.issues[0].line, 3);
    has(&r.issues[0], "trailing comma", "remove the comma");
    let r = run_bytes(
        "d.json",
        b"[{\"prompt\": \"p\", \"completion\": \"c\"},\n {\"prompt\": \"q\", \"completion\": \"d\"}",
        &opts,
    );
    assert!(
        r.issues
            .iter()
            .any(|i| i.error.contains("ends before the JSON array is closed"))
    );
    let r = run_bytes(
        "d.json",
        b"[{\"prompt\": \"p\", \"completion\": \"c\"},\n {\"prompt\": \"q\", \"completion\": \"d\"}]\n{}",
        &opts,
    );
    assert_eq!(r.issues.len(), 1);
    assert_eq!(r.issues[0].line, 3);
    has(&r.issues[0], "after the closing ]", "one JSON array");
}

#[test]
fn a_split_that_leaves_training_empty_is_dropped_with_a_warning() {
    let opts = ValidationOptions {
        holdout_fraction: 1.0,
        ..Default::default()
    };
    let r = run_bytes("d.jsonl", format!("{GOOD}\n{GOOD2}\n").as_bytes(), &opts);
    assert!(r.training_ready, "{:#?}", r.issues);
    assert_eq!(r.statistics.total_training_pairs, 2);
    assert_eq!(r.statistics.total_validation_pairs, 0);
    assert_eq!(r.issues.len(), 1);
    assert_eq!(r.issues[0].severity, Severity::Warning);
    has(
        &r.issues[0],
        "would put all 2 of its examples in the validation split",
        "add examples",
    );
    has(&r.issues[0], "no validation split is used", "");
}

#[test]
fn a_one_example_file_is_trainable_without_a_split() {
    // Index 0 with seed 42 falls into a 10 % split: (0 × 2654435761 + 42) mod 10000 = 42.
    let r = run_bytes(
        "d.jsonl",
        format!("{GOOD}\n").as_bytes(),
        &ValidationOptions::default(),
    );
    assert!(r.training_ready, "{:#?}", r.issues);
    assert_eq!(r.statistics.total_training_pairs, 1);
    assert_eq!(r.statistics.total_validation_pairs, 0);
    assert_eq!(r.statistics.warning_count, 1);
    has(&r.issues[0], "1 example", "");
    has(
        &r.issues[0],
        "too small for a validation split",
        "hold-out fraction to 0",
    );
    // Three examples where the split selects none for validation: the same rule, worded so.
    let three = format!("{GOOD2}\n{GOOD}\n{GOOD2}\n").replace("Yo", "A");
    let opts = ValidationOptions {
        split_seed: 1000,
        ..Default::default()
    };
    let r = run_bytes("d.jsonl", three.as_bytes(), &opts);
    assert_eq!(r.statistics.total_validation_pairs, 0);
    assert!(
        r.issues
            .iter()
            .any(|i| i.error.contains("selects none of its 3 examples")),
        "{:#?}",
        r.issues
    );
    // With no hold-out asked for, nothing is said.
    let r = check(&format!("{GOOD}\n"));
    assert!(r.issues.is_empty());
}

#[test]
fn all_problems_are_counted_the_first_100_kept_in_line_order() {
    let mut text = String::new();
    for i in 0..250 {
        if i % 2 == 0 {
            text.push_str("{\"prompt\": \"p\", \"completion\": \"\"}\n");
        } else {
            text.push_str("{\"prompt\": \"p\", \"completion\": \"c\", \"x\": 1}\n");
        }
    }
    let r = check(&text);
    assert_eq!(r.statistics.error_count, 125);
    assert_eq!(r.statistics.warning_count, 125 + 1); // + the duplicates summary
    assert_eq!(r.issues.len(), 100);
    let lines: Vec<u64> = r.issues.iter().map(|i| i.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert_eq!(lines[0], 1);
    // The 125 unknown-key warnings are one finding (line 2), so 98 errors fit.
    assert_eq!(*lines.last().unwrap(), 195, "{lines:?}");
    assert!(r.issues.iter().any(|i| {
        i.line == 2
            && i.error
                .contains("(the same 125 times in the file, on lines 2, 4, 6, 8, 10, …)")
    }));
    // The duplicates summary (on line 4, the first repeat) made it in between.
    assert!(
        r.issues
            .iter()
            .any(|i| i.line == 4 && i.error.contains("124 examples are exact duplicates"))
    );
    let none = ValidationOptions {
        max_issues_kept: 0,
        ..opts()
    };
    let r = run_bytes("d.jsonl", text.as_bytes(), &none);
    assert!(r.issues.is_empty());
    assert_eq!(r.statistics.error_count, 125);
}

#[test]
fn pretty_printed_jsonl_is_explained() {
    let one = "{\n  \"prompt\": \"p\",\n  \"completion\": \"c\"\n}\n";
    let r = check(&one.repeat(50));
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert_eq!(r.statistics.error_count, 1);
    assert_eq!(r.issues[0].line, 1);
    has(
        &r.issues[0],
        "pretty-printed JSON: the first example spreads over lines 1–4",
        "jq -c",
    );
    assert!(!r.training_ready);
}

#[test]
fn a_bom_in_the_middle_is_named() {
    let r = check(&format!("{GOOD}\n\u{feff}{GOOD2}\n"));
    assert_eq!(r.issues[0].line, 2);
    has(&r.issues[0], "byte order mark", "remove it");
}
