//! The formats real users bring (tool calls, plain text, text parts, preference and KTO data),
//! the data refused as a whole (multimodal, process-reward), and the file shapes that get one
//! file-level verdict.

use brightrun_engine::domain::{ChatMessage, DatasetFormat, Severity};
use brightrun_engine::validation::{
    RecordVerdict, ValidationOptions, ValidationReport, validate_reader, validate_reader_with,
};

fn opts() -> ValidationOptions {
    ValidationOptions {
        holdout_fraction: 0.0,
        ..Default::default()
    }
}

fn run(name: &str, text: &str) -> ValidationReport {
    validate_reader(text.as_bytes(), name, &opts(), &mut |_| {}).unwrap()
}

fn check(text: &str) -> ValidationReport {
    run("data.jsonl", text)
}

fn clean(r: &ValidationReport) {
    assert_eq!(r.statistics.error_count, 0, "{:#?}", r.issues);
    assert_eq!(r.statistics.warning_count, 0, "{:#?}", r.issues);
    assert!(r.training_ready);
}

/// The only issue of a report: an error containing `error` and `suggestion`.
fn only_error(r: &ValidationReport, error: &str, suggestion: &str) {
    assert_eq!(r.issues.len(), 1, "{:#?}", r.issues);
    assert_eq!(r.statistics.error_count, 1, "{:#?}", r.issues);
    let i = &r.issues[0];
    assert_eq!(i.severity, Severity::Error);
    assert!(i.error.contains(error), "{:?} lacks {error:?}", i.error);
    assert!(
        i.suggestion.contains(suggestion),
        "{:?} lacks {suggestion:?}",
        i.suggestion
    );
    assert!(!r.training_ready);
}

fn first_error(r: &ValidationReport) -> String {
    r.issues
        .iter()
        .find(|i| i.severity == Severity::Error)
        .map(|i| i.error.clone())
        .unwrap_or_default()
}

const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#;

fn openai_tool_line(args: &str, call_id: &str, answer_id: &str) -> String {
    format!(
        r#"{{"tools": {TOOLS}, "messages": [{{"role": "user", "content": "Weather in Paris?"}}, {{"role": "assistant", "content": null, "tool_calls": [{{"id": "{call_id}", "type": "function", "function": {{"name": "get_weather", "arguments": {args}}}}}]}}, {{"role": "tool", "tool_call_id": "{answer_id}", "content": "{{\"temp\": 21}}"}}, {{"role": "assistant", "content": "It is 21 °C."}}]}}"#
    )
}

#[test]
fn openai_tool_calls_are_accepted() {
    let line = openai_tool_line(r#""{\"city\": \"Paris\"}""#, "call_1", "call_1");
    let r = check(&format!("{line}\n"));
    clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::OpenaiChat));
    let roles: Vec<&str> = r.sample[0].iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(r.sample[0][1].content, r#"get_weather({"city": "Paris"})"#);
    // The tool definitions count toward the tokens.
    let bare = check(
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"}, {\"role\": \"assistant\", \"content\": \"It is 21 °C.\"}]}\n",
    );
    assert!(r.statistics.total_tokens > bare.statistics.total_tokens + 20);
}

#[test]
fn a_tool_call_can_end_the_conversation_and_content_may_be_empty() {
    let r = check(&format!(
        r#"{{"tools": {TOOLS}, "messages": [{{"role": "user", "content": "Paris?"}}, {{"role": "assistant", "content": "", "tool_calls": [{{"id": "a", "type": "function", "function": {{"name": "get_weather", "arguments": "{{}}"}}}}]}}]}}"#
    ));
    clean(&r);
}

#[test]
fn tool_call_arguments_must_be_json() {
    let line = openai_tool_line(r#""{city: Paris}""#, "call_1", "call_1");
    let r = check(&line);
    only_error(
        &r,
        "messages[1].tool_calls[0].arguments is not valid JSON",
        "arguments a JSON object",
    );
    let line = openai_tool_line(r#""[1, 2]""#, "c", "c");
    assert!(first_error(&check(&line)).contains("must be a JSON object"));
}

#[test]
fn a_tool_message_answers_an_earlier_call() {
    let line = openai_tool_line(r#""{}""#, "call_1", "call_9");
    let r = check(&line);
    only_error(
        &r,
        "messages[2] is a tool result for call \"call_9\", which no earlier assistant message made",
        "same \"id\"",
    );
    // A tool result after a plain assistant reply.
    let r = check(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "tool", "content": "c"}, {"role": "assistant", "content": "d"}]}"#,
    );
    assert!(
        first_error(&r)
            .contains("messages[2] is a tool result, but no earlier assistant message made a call")
    );
    // A user turn right after a call, before its result.
    let r = check(
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}"#,
    );
    assert!(
        first_error(&r).contains("makes a tool call, but messages[2] is a user message"),
        "{:#?}",
        r.issues
    );
}

#[test]
fn tools_must_be_json_schema_objects() {
    let bad_tools = [
        (
            r#"[{"type": "function", "function": {"description": "x"}}]"#,
            "\"tools\"[0] has no function \"name\"",
        ),
        (
            r#"[{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]"#,
            "\"tools\"[0].parameters has \"type\" \"string\"",
        ),
        (
            r#"[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": 3}}}}]"#,
            "\"properties\".\"a\" is a number",
        ),
        (
            r#"[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}, "required": ["b"]}}}]"#,
            "\"required\" names \"b\"",
        ),
        (r#"{"name": "f"}"#, "\"tools\" is an object, not a list"),
    ];
    for (tools, want) in bad_tools {
        let r = check(&format!(
            r#"{{"tools": {tools}, "messages": [{{"role": "user", "content": "a"}}, {{"role": "assistant", "content": "b"}}]}}"#
        ));
        only_error(&r, want, "\"parameters\": {\"type\": \"object\"");
    }
}

#[test]
fn legacy_functions_and_function_role() {
    let r = check(
        r#"{"functions": [{"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}], "messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": null, "function_call": {"name": "add", "arguments": "{\"a\": 1}"}}, {"role": "function", "name": "add", "content": "2"}, {"role": "assistant", "content": "2"}]}"#,
    );
    clean(&r);
    assert_eq!(r.sample[0][2].role, "tool");
    // A function result with no call before it.
    let r = check(
        r#"{"messages": [{"role": "user", "content": "1+1?"}, {"role": "function", "name": "add", "content": "2"}, {"role": "assistant", "content": "2"}]}"#,
    );
    assert!(first_error(&r).contains("no earlier assistant message made a call"));
}

#[test]
fn sharegpt_glaive_tool_calls() {
    let line = r#"{"conversations": [{"from": "human", "value": "Weather in Paris?"}, {"from": "function_call", "value": "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"}, {"from": "observation", "value": "{\"temp\": 21}"}, {"from": "gpt", "value": "21 °C."}], "tools": "[{\"name\": \"get_weather\", \"description\": \"Weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}]"}"#;
    let r = check(line);
    clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::Sharegpt));
    let roles: Vec<&str> = r.sample[0].iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    // A call that is not JSON, and tools that are not.
    let r = check(&line.replace(
        r#""{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}""#,
        r#""get_weather(Paris)""#,
    ));
    assert!(
        first_error(&r).contains("conversations[1].value (a function_call) is not valid JSON"),
        "{:#?}",
        r.issues
    );
    let r = check(&line.replace(r#""tools": "[{"#, r#""tools": "[{]"#));
    assert!(
        first_error(&r).contains("\"tools\" is a string that is not valid JSON"),
        "{:#?}",
        r.issues
    );
    // An observation with no call before it.
    let r = check(
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "observation", "value": "x"}, {"from": "gpt", "value": "a"}]}"#,
    );
    assert!(
        first_error(&r).contains("conversations[1] is a tool result"),
        "{:#?}",
        r.issues
    );
}

#[test]
fn plain_text_is_a_format() {
    let r =
        check("{\"text\": \"The cat sat on the mat.\"}\n{\"text\": \"Dogs bark.\", \"id\": 7}\n");
    clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::Text));
    assert_eq!(
        r.sample[0],
        vec![ChatMessage {
            role: "text".into(),
            content: "The cat sat on the mat.".into()
        }]
    );
    assert_eq!(r.statistics.total_tokens, 6 + 3);
    let r = check("{\"text\": \"  \"}\n");
    assert!(first_error(&r).contains("\"text\" is empty"));
    let r = check("{\"text\": \"a\", \"lang\": \"en\"}\n");
    assert_eq!(r.statistics.warning_count, 1);
    assert!(
        r.issues[0]
            .suggestion
            .contains("a plain text example has \"text\"")
    );
}

#[test]
fn content_as_text_parts_with_text_or_value_is_joined() {
    let r = check(concat!(
        r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}, {"role": "assistant", "content": [{"type": "text", "value": "Hi"}]}]}"#,
        "\n",
        r#"{"messages": [{"role": "user", "content": [{"text": "Yo"}]}, {"role": "assistant", "content": "Hey"}]}"#,
    ));
    clean(&r);
    assert_eq!(r.sample[0][0].content, "Hello");
    assert_eq!(r.sample[0][1].content, "Hi");
    let r = check(
        r#"{"conversations": [{"from": "human", "value": [{"type": "text", "value": "q"}]}, {"from": "gpt", "value": "a"}]}"#,
    );
    clean(&r);
    assert_eq!(r.sample[0][0].content, "q");
}

fn multimodal(text: &str, by: &str) {
    let r = check(text);
    only_error(&r, "this is multimodal data", "vision-language");
    assert!(
        r.issues[0]
            .error
            .contains("BrightRun trains text LoRA adapters")
    );
    assert!(
        r.issues[0].error.contains(by),
        "{:?} lacks {by:?}",
        r.issues[0].error
    );
    assert_eq!(r.statistics.total_examples, 0);
}

#[test]
fn multimodal_data_gets_one_file_level_error() {
    let sharegpt = r#"{"conversations": [{"from": "human", "value": "<image>What is this?"}, {"from": "gpt", "value": "A cat."}], "images": ["cat.png"]}"#;
    multimodal(&format!("{sharegpt}\n").repeat(30), "an \"images\" key");
    let r = check(&format!("{sharegpt}\n").repeat(30));
    assert!(r.issues[0].error.contains("all 30 examples"));
    assert!(
        r.issues[0]
            .error
            .contains("lines 1, 2, 3, 4, 5 and 25 more")
    );
    assert_eq!(r.format, Some(DatasetFormat::Sharegpt));
    multimodal(
        r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "What?"}, {"type": "image_url", "image_url": {"url": "x.png"}}]}, {"role": "assistant", "content": "A cat."}]}"#,
        "image content parts",
    );
    multimodal(
        r#"{"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "…"}}]}, {"role": "assistant", "content": "Hi."}]}"#,
        "audio content parts",
    );
    multimodal(
        r#"{"instruction": "<image>Describe", "output": "A dog."}"#,
        "an <image> tag",
    );
    multimodal(
        r#"{"conversations": [{"from": "human", "value": "<video>Describe"}, {"from": "gpt", "value": "Rain."}], "videos": ["a.mp4"]}"#,
        "a \"videos\" key",
    );
    // One multimodal line among text lines still refuses the file, once, on its line.
    let text = r#"{"prompt": "a", "completion": "b"}"#;
    let r = check(&format!(
        "{text}\n{}\n{}\n",
        r#"{"prompt": "<audio> say", "completion": "b"}"#,
        text.replace('a', "c")
    ));
    only_error(
        &r,
        "1 of 3 examples holds images, audio or video, recognised by an <audio> tag: line 2)",
        "",
    );
    assert_eq!(r.issues[0].line, 2);
    assert_eq!(r.format, Some(DatasetFormat::PromptCompletion));
    // An empty images list holds no media.
    clean(&check(&format!(
        "{}\n",
        r#"{"instruction": "a", "output": "b", "images": []}"#.replace(", \"images\": []", "")
    )));
}

#[test]
fn preference_data_is_a_format_of_its_own() {
    // Once refused ("for SFT keep the chosen reply"), now trained with dpo, orpo or simpo
    // (engine/tests/validation_preference.rs has every layout).
    let dpo = r#"{"prompt": "2+2?", "chosen": "4", "rejected": "5"}"#;
    let r = check(&format!("{dpo}\n{}\n", dpo.replace("2+2", "3+3")));
    clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::Preference));
    let openai = r#"{"input": {"messages": [{"role": "user", "content": "Hi"}]}, "preferred_output": [{"role": "assistant", "content": "Hello!"}], "non_preferred_output": [{"role": "assistant", "content": "Go away."}]}"#;
    let r = check(openai);
    clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::Preference));
    let r = check(r#"{"chosen_messages": [], "rejected_messages": []}"#);
    assert!(
        first_error(&r).contains("\"chosen_messages\" is an empty list"),
        "{:#?}",
        r.issues
    );
    assert_eq!(r.format, Some(DatasetFormat::Preference));
    // LLaMA-Factory's ShareGPT preference layout: conversations plus chosen/rejected turns.
    let r = check(
        r#"{"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}}"#,
    );
    clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::Preference));
}

#[test]
fn kto_data_is_a_format_of_its_own() {
    let r = check(concat!(
        r#"{"prompt": "Hi", "completion": "Hello!", "label": true}"#,
        "\n",
        r#"{"prompt": "Hi", "completion": "Go away.", "label": false}"#,
        "\n",
    ));
    clean(&r);
    assert_eq!(r.format, Some(DatasetFormat::Kto));
    let p = r.statistics.preference.as_ref().unwrap();
    assert_eq!((p.desirable, p.undesirable), (1, 1));
    // One label only: KTO needs both.
    let r = check(
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "kto_tag": false}"#,
    );
    only_error(
        &r,
        "KTO needs both desirable and undesirable examples",
        "DPO",
    );
    assert_eq!(r.format, Some(DatasetFormat::Kto));
    // A non-boolean label is just an unknown key.
    let r = check(r#"{"prompt": "Hi", "completion": "Hello!", "label": "greeting"}"#);
    assert!(r.training_ready);
    assert_eq!(r.format, Some(DatasetFormat::PromptCompletion));
}

#[test]
fn pretty_printed_jsonl_gets_one_error() {
    let text = "{\n  \"prompt\": \"a\",\n  \"completion\": \"b\"\n}\n{\n  \"prompt\": \"c\",\n  \"completion\": \"d\"\n}\n";
    let r = check(&text.repeat(20));
    only_error(&r, "pretty-printed JSON", "jq -c . in.json > out.jsonl");
}

#[test]
fn a_single_json_object_in_a_json_file_gets_one_error() {
    let r = run(
        "squad.json",
        "{\n \"version\": 1,\n \"data\": [\n  {\"prompt\": \"a\", \"completion\": \"b\"},\n  {\"prompt\": \"c\", \"completion\": \"d\"}\n ]\n}\n",
    );
    only_error(
        &r,
        "a single JSON object, with the examples in its list \"data\"",
        "jq -c '.data[]'",
    );
    let r = run(
        "one.json",
        "{\n \"prompt\": \"a\",\n \"completion\": \"b\"\n}\n",
    );
    only_error(&r, "a single JSON object (4 lines)", "wrap them in [ ]");
    // One example on one line is a one-example dataset, whatever the extension.
    let r = run("one.json", "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
    clean(&r);
    assert_eq!(r.statistics.total_examples, 1);
}

#[test]
fn text_and_csv_files_get_one_error() {
    let r = run(
        "notes.txt",
        "Once upon a time\nthere was a cat.\nThe end.\n",
    );
    only_error(
        &r,
        "the file is plain text (.txt), not JSONL",
        "{\"text\": …}",
    );
    let r = run("data.jsonl", "question,answer\nhi,hello\nbye,see you\n");
    only_error(&r, "the file is CSV text, not JSONL", "read_csv");
    let r = run("data.csv", "question,answer\nhi,hello\n");
    only_error(&r, ".csv text", "read_csv");
}

#[test]
fn a_file_of_json_strings_gets_one_error() {
    let r = check("\"first document\"\n\"second\"\n\"third\"\n");
    only_error(
        &r,
        "the file holds JSON strings (3 lines), not example objects",
        "{\"text\": …}",
    );
    let r = run("d.json", "[\"a\", \"b\"]");
    only_error(&r, "JSON strings (2 elements)", "");
    // Strings among objects are named one by one.
    let r = check("{\"text\": \"a\"}\n\"b\"\n{\"text\": \"c\"}\n");
    only_error(
        &r,
        "the example is a string, not a JSON object",
        "a plain text example",
    );
    assert_eq!(r.issues[0].line, 2);
}

#[test]
fn a_one_line_json_array_names_the_element() {
    let mut items: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"prompt": "p{i}", "completion": "c{i}"}}"#))
        .collect();
    items[17] = r#"{"prompt": "p", "completion": ""}"#.into();
    let r = run("d.json", &format!("[{}]", items.join(", ")));
    only_error(&r, "element 17: \"completion\" is empty", "");
    assert_eq!(r.issues[0].line, 1);
    // Duplicates are named by element too.
    let r = run("d.json", &format!("[{}, {}]", items[3], items[3]));
    assert!(
        r.issues[0].error.contains("element 1 repeats element 0"),
        "{:#?}",
        r.issues
    );
    assert!(
        r.issues[0]
            .error
            .starts_with("1 example is an exact duplicate")
    );
}

#[test]
fn messages_use_the_right_article() {
    let r = check("{\"messages\": []}\n{\"messages\": [], \"x\": 1}");
    let warning = r
        .issues
        .iter()
        .find(|i| i.severity == Severity::Warning)
        .unwrap();
    assert!(
        warning.suggestion.contains("an OpenAI chat example has"),
        "{warning:?}"
    );
    let r = check("{\"instruction\": \"a\", \"output\": \"b\"}\n5\n");
    assert!(
        r.issues[0]
            .suggestion
            .contains("write it as an Alpaca example"),
        "{:?}",
        r.issues
    );
}

#[test]
fn record_verdicts_name_valid_and_duplicate_records() {
    let text = concat!(
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n",
        "not json\n",
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n",
        "{\"prompt\": \"a\", \"completion\": \"\"}\n",
    );
    let mut seen = Vec::new();
    validate_reader_with(
        text.as_bytes(),
        "d.jsonl",
        &opts(),
        &mut |_| {},
        &mut |v: &RecordVerdict<'_>| {
            seen.push((
                v.line,
                v.valid,
                v.duplicate_of,
                String::from_utf8_lossy(v.bytes).len(),
            ))
        },
    )
    .unwrap();
    assert_eq!(
        seen,
        vec![
            (1, true, None, 34),
            (2, false, None, 8),
            (3, true, Some(1), 34),
            (4, false, None, 33)
        ]
    );
}

#[test]
fn a_one_example_file_is_worded_as_one() {
    let r = check(
        r#"{"messages": [{"role": "user", "content": "<image> what is this?"}, {"role": "assistant", "content": "A cat."}]}"#,
    );
    only_error(
        &r,
        "its one example holds images, audio or video, recognised by an <image> tag: line 1)",
        "",
    );
    assert!(
        !r.issues[0].error.contains("all example"),
        "{}",
        r.issues[0].error
    );
    // In a .json array, the element is named.
    let r = validate_reader(
        br#"[{"prompt": "<image> what?", "completion": "A cat."}]"#.as_slice(),
        "data.json",
        &ValidationOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    only_error(
        &r,
        "(its one example holds images, audio or video, recognised by an <image> tag: element 0)",
        "",
    );
}

/// TRL's stepwise-supervision layout (its docs' example): process-reward data, said so once,
/// not "add a \"completion\"".
#[test]
fn stepwise_supervision_is_process_reward_data() {
    let line = r#"{"prompt": "Which number is larger, 9.8 or 9.11?", "completions": ["The fractional part of 9.8 is 0.8, while the fractional part of 9.11 is 0.11.", "Since 0.11 is greater than 0.8, the number 9.11 is larger than 9.8."], "labels": [true, false]}"#;
    let r = check(&format!("{line}\n{line}\n"));
    only_error(
        &r,
        "this is process-reward data, not SFT data (stepwise supervision: \"prompt\", a list of \"completions\" steps and a \"labels\" list",
        "PRM trainer",
    );
    assert!(!r.issues[0].suggestion.contains("add \"completion\""));
    assert!(!r.training_ready);
}

/// LLaMA-Factory's reasoning and tool-use data (`reason_tool_use_demo`, its v1 layout): one
/// file-level error naming what is not read, however many examples hold such parts.
#[test]
fn reasoning_and_tool_call_parts_are_one_file_level_error() {
    let line = r#"{"messages": [{"role": "user", "content": [{"type": "text", "value": "What is 6*8?"}]}, {"role": "assistant", "content": [{"type": "reasoning", "value": "Multiply."}, {"type": "tool_call", "value": "{\"name\": \"multiply\", \"arguments\": {\"a\": 6, \"b\": 8}}"}]}, {"role": "tool", "content": [{"type": "text", "value": "48."}]}, {"role": "assistant", "content": [{"type": "text", "value": "48."}]}]}"#;
    let text: String = (0..177).map(|_| format!("{line}\n")).collect();
    let r = check(&text);
    only_error(
        &r,
        "this file uses content parts BrightRun does not read (\"reasoning\" content parts, as in LLaMA-Factory's reasoning and tool-use data; all 177 examples: lines 1, 2, 3, 4, 5 and 172 more)",
        "tool_calls",
    );
}
