//! `GET /api/openapi.json`: the daemon's routes as an OpenAPI 3.0 document whose schemas are
//! generated from the very types the routes decode and encode (schemars), so the document
//! cannot drift from the code: a test holds its paths and methods equal to the router's, and
//! another validates it (openapi-spec-validator) and tests the live daemon against it
//! (schemathesis, tests/e2e_schemathesis.rs).
//!
//! Its schemas carry the limits the server enforces: lengths of ids and strings, the ranges
//! of integers (the range of their Rust type where nothing narrower is enforced), so that a
//! request the document calls valid is not refused as invalid, and the other way round.

use super::routes::{JobBody, MAX_LIMIT, MAX_PAGE, NewDatasetBody, PatchDatasetBody};
use crate::api::*;
use crate::domain::*;
use crate::events::Sequenced;
use crate::training::Estimate;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Value, json};

struct Doc {
    generator: SchemaGenerator,
}

impl Doc {
    /// `T`'s schema: a reference to its definition, or the schema itself for a type that has
    /// none (`Vec<T>`, `u64`), transformed like the definitions are.
    fn schema<T: JsonSchema>(&mut self) -> Value {
        let mut s = self.generator.subschema_for::<T>();
        for t in self.generator.transforms_mut() {
            t.transform(&mut s);
        }
        s.to_value()
    }

    /// `{success: true, data: T}`
    fn ok(&mut self, data: Value) -> Value {
        json!({
            "description": "success",
            "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["success", "data"],
                "properties": {"success": {"type": "boolean", "enum": [true]}, "data": data},
            }}}
        })
    }

    /// `{success: true, data: {<key>: [T], total, page, limit, totalPages}}`
    fn page<T: JsonSchema>(&mut self, key: &str) -> Value {
        let item = self.schema::<T>();
        let data = json!({
            "type": "object",
            "required": [key, "total", "page", "limit", "totalPages"],
            "properties": {
                key: {"type": "array", "items": item},
                "total": {"type": "integer", "minimum": 0},
                "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                "totalPages": {"type": "integer", "minimum": 0},
            }
        });
        let ok = self.ok(data);
        self.responses(ok)
    }

    fn error(&mut self) -> Value {
        let code = self.schema::<ErrorCode>();
        let reason = self.schema::<crate::api::Reason>();
        json!({"content": {"application/json": {"schema": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": {"type": "string"},
                "details": {"type": "string", "nullable": true},
                "code": code,
                "field": {"type": "string", "nullable": true},
                "reason": reason,
            }
        }}}})
    }

    /// The responses of a route: `ok` on 200, the error shape on every error status.
    fn responses(&mut self, ok: Value) -> Value {
        let err = self.error();
        let mut r = json!({"200": ok});
        for (status, what) in [
            ("400", "invalid input (the field is named)"),
            ("401", "no token, a wrong one or a revoked one"),
            ("404", "no such record for this user"),
            (
                "409",
                "the record's state refuses it, or an id prefix matches several records",
            ),
            ("429", "too many failed authentication attempts"),
            ("503", "storage or a backend does not answer"),
        ] {
            let mut e = err.clone();
            e["description"] = json!(what);
            r[status] = e;
        }
        r
    }

    fn body<T: JsonSchema>(&mut self) -> Value {
        let s = self.schema::<T>();
        json!({"required": true, "content": {"application/json": {"schema": s}}})
    }
}

/// An id in a path: a full id, a unique prefix of one (dashes and case do not count) or, for
/// a dataset, its name. The server refuses one longer than [`MAX_FIELD_LEN`] and one with
/// nothing but spaces and dashes in it.
fn id_param(what: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": format!("a {what} id or unique prefix"), "schema": id_schema()})
}

fn id_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_FIELD_LEN, "pattern": format!("[^{WS}-]")})
}

/// The schemas of what clients send (the others describe what the server answers), with the
/// request each stands for where it is one.
const REQUEST_SCHEMAS: &[(&str, Option<&str>)] = &[
    ("Request", None),
    ("JobSpec", None),
    ("Paging", None),
    ("NewDatasetBody", Some("create_dataset")),
    ("PatchDatasetBody", Some("update_dataset")),
    ("JobBody", None),
    ("EvaluateBody", Some("evaluate_models")),
    ("ExportBody", Some("export_model")),
    ("ChatBody", Some("chat")),
];

/// What `str::trim` removes (Unicode White_Space), as a regex class's contents: spelled out,
/// because `\s` means other sets in other regex dialects (ECMA's lacks U+0085, Python's has
/// U+001C..U+001F).
const WS: &str =
    "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
/// Control characters (`char::is_control`).
const CTRL: &str = "\\x00-\\x1f\\x7f-\\x9f";

/// A dataset's name as the server takes it: trimmed, then 1 to 200 characters, none of them
/// control characters (`engine::datasets::check_name`).
fn name_pattern() -> String {
    format!("^[{WS}]*[^{WS}{CTRL}]([^{CTRL}]*[^{WS}{CTRL}])?[{WS}]*$")
}

/// The limits the server enforces on a request field that its type does not carry, by the
/// field's name (schemars knows types, not the engine's rules); `op` is the request's.
fn field_limits(op: Option<&str>, field: &str, catalog: Option<&Catalog>) -> Option<Value> {
    let names = |v: Vec<String>| json!({"enum": v});
    Some(match field {
        "gpu_type" => names(catalog?.gpus.iter().map(|g| g.id.clone()).collect()),
        "backend" => names(catalog?.backends.clone()),
        // Empty: the default.
        "preset" => names(
            std::iter::once(String::new())
                .chain(catalog?.presets.iter().map(|p| p.name.clone()))
                .collect(),
        ),
        "id" | "dataset" | "dataset_id" => id_schema(),
        "name" if op == Some("update_dataset") => json!({
            "minLength": 1, "maxLength": 200, "pattern": name_pattern(),
        }),
        // Blank: the name comes from the file's.
        "name"
            if matches!(
                op,
                Some("create_dataset" | "import_dataset" | "clean_dataset")
            ) =>
        {
            json!({"maxLength": 200, "pattern": format!("^[{WS}]*$|{}", name_pattern())})
        }
        "file_name" => json!({
            "minLength": 1, "maxLength": MAX_FIELD_LEN, "pattern": format!("[^{WS}]"),
        }),
        "description" | "search" | "path" | "file" => json!({"maxLength": MAX_FIELD_LEN}),
        "quantize" if op == Some("export_model") => json!({
            "enum": crate::domain::GGUF_QUANTIZATIONS, "nullable": true,
        }),
        "name" if op == Some("export_model") => json!({
            "pattern": format!("^[A-Za-z0-9_][A-Za-z0-9._-]{{0,{}}}$", crate::domain::MAX_EXPORT_NAME - 1),
            "nullable": true,
        }),
        "system_prompt" => json!({"maxLength": 16 * 1024, "nullable": true}),
        // What `JobBody::spec` turns into `--set key=value`.
        "hyperparameters" => json!({"additionalProperties": {"anyOf": [
            {"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "array", "items": {}},
        ]}}),
        "messages" if op == Some("chat") => json!({
            "minItems": 1, "maxItems": crate::chat::MAX_CHAT_MESSAGES,
        }),
        // The default `[playground] max_new_tokens_limit` (an engine may allow more).
        "max_new_tokens" if op == Some("chat") => json!({
            "minimum": 1,
            "maximum": crate::config::PlaygroundConfig::default().max_new_tokens_limit,
        }),
        "temperature" if op == Some("chat") => json!({"minimum": 0, "maximum": 10}),
        "file_size" => json!({"maximum": crate::storage::Bucket::Datasets.max_object_size()}),
        "gpu_count" => json!({
            "minimum": crate::training::ranges::GPU_COUNT.0,
            "maximum": crate::training::ranges::GPU_COUNT.1,
        }),
        _ => return None,
    })
}

/// Adds [`field_limits`] to a request schema's properties (each variant's, for `Request`).
fn request_limits(schema: &mut Value, op: Option<&str>, catalog: Option<&Catalog>) {
    let mut objects: Vec<&mut Value> = match schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        Some(variants) => variants.iter_mut().collect(),
        None => vec![schema],
    };
    for obj in objects.iter_mut() {
        let op = obj["properties"]["op"]["enum"][0]
            .as_str()
            .or(op)
            .map(str::to_string);
        let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (field, p) in props.iter_mut() {
            let (Some(mut limits), Some(p)) = (
                field_limits(op.as_deref(), field, catalog),
                p.as_object_mut(),
            ) else {
                continue;
            };
            // OpenAPI 3.0: `nullable` does not let null past an `enum` without it.
            if let (Some(e), Some(true)) = (
                limits.get_mut("enum").and_then(Value::as_array_mut),
                p.get("nullable").and_then(Value::as_bool),
            ) {
                e.push(Value::Null);
            }
            for (k, v) in limits.as_object().into_iter().flatten() {
                p.insert(k.clone(), v.clone());
            }
        }
    }
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn paging() -> Vec<Value> {
    vec![
        query(
            "page",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
            "1-based page",
        ),
        query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
            "records per page (default 20)",
        ),
    ]
}

/// The whole document, with what any engine accepts.
pub fn document() -> Value {
    document_with(None)
}

/// The whole document; with an engine's catalog, its presets, GPU types and backends are the
/// only ones the document allows (they come from its config).
pub(super) fn document_with(catalog: Option<&Catalog>) -> Value {
    let mut d = Doc {
        generator: SchemaSettings::openapi3()
            .with_transform(RecursiveTransform(tuples_as_arrays as fn(&mut Schema)))
            .with_transform(RecursiveTransform(integer_ranges as fn(&mut Schema)))
            .into_generator(),
    };
    let dataset = d.schema::<Dataset>();
    let job = d.schema::<TrainingJob>();
    let model = d.schema::<ModelArtifact>();
    let points = d.schema::<Vec<MetricsPoint>>();
    let estimate = d.schema::<Estimate>();
    let costs = d.schema::<CostsReport>();
    let ticket = d.schema::<UploadTicket>();
    let reply = d.schema::<Reply>();
    let change = d.schema::<Sequenced>();
    let dataset_status = d.schema::<DatasetStatus>();
    let job_status = d.schema::<JobStatus>();
    let mut paths = serde_json::Map::new();
    let mut add = |path: &str, method: &str, op: Value| {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = op;
    };

    let mut list_datasets = paging();
    list_datasets.push(query(
        "status",
        dataset_status,
        "only datasets in this status",
    ));
    list_datasets.push(query(
        "search",
        json!({"type": "string", "maxLength": MAX_FIELD_LEN}),
        "name, file name or description contains this",
    ));
    add(
        "/api/datasets",
        "get",
        json!({"summary": "The caller's datasets, newest first", "parameters": list_datasets, "responses": d.page::<Dataset>("datasets")}),
    );
    let created = d_ok(&mut d, ticket);
    let created = d.responses(created);
    add(
        "/api/datasets",
        "post",
        json!({"summary": "Create a dataset and learn where to send its bytes", "requestBody": d.body::<NewDatasetBody>(), "responses": created}),
    );
    let one = d_ok(&mut d, dataset.clone());
    let ds = d.responses(one);
    add(
        "/api/datasets/{id}",
        "get",
        json!({"summary": "One dataset", "parameters": [id_param("dataset")], "responses": ds.clone()}),
    );
    add(
        "/api/datasets/{id}",
        "patch",
        json!({"summary": "Rename or describe a dataset", "parameters": [id_param("dataset")], "requestBody": d.body::<PatchDatasetBody>(), "responses": ds.clone()}),
    );
    add(
        "/api/datasets/{id}",
        "delete",
        json!({"summary": "Delete a dataset (refused while an active job uses it)", "parameters": [id_param("dataset"), query("purge", json!({"type": "boolean"}), "delete its stored object too")], "responses": ds.clone()}),
    );
    add(
        "/api/datasets/{id}/confirm",
        "post",
        json!({"summary": "Hand an uploaded dataset to the validator", "parameters": [id_param("dataset")], "responses": ds.clone()}),
    );
    let example = d.schema::<ExampleInspection>();
    let stats = d.schema::<DatasetInspection>();
    let inspected = d_ok(&mut d, json!({"oneOf": [example, stats]}));
    let inspect_params = json!([
        id_param("dataset"),
        query(
            "model",
            json!({"type": "string", "minLength": 1, "maxLength": MAX_FIELD_LEN}),
            "the base model (a Hub id or a folder on the engine's machine); the config's default when none"
        ),
        query(
            "example",
            json!({"type": "integer", "minimum": 0}),
            "the example, 0-based among the records (default: the first)"
        ),
        query(
            "line",
            json!({"type": "integer", "minimum": 1}),
            "the example on this line of the file"
        ),
        query(
            "max_seq_length",
            json!({"type": "integer", "minimum": 128, "maximum": 32768}),
            "the run's max_seq_length (the default preset's when none)"
        ),
        query(
            "stats",
            json!({"type": "boolean"}),
            "exact counts over the whole dataset instead of one example"
        ),
    ]);
    add(
        "/api/datasets/{id}/inspect",
        "get",
        json!({"summary": "What a base model will learn from the dataset, as the trainer renders and masks it: one example token by token, or exact counts (`stats`); runs the trainer's code on the engine's machine, cached", "parameters": inspect_params, "responses": d.responses(inspected)}),
    );
    add(
        "/api/datasets/{id}/upload",
        "put",
        json!({"summary": "The dataset's bytes (when the store has no presigned URLs)", "parameters": [id_param("dataset")], "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "responses": ds}),
    );

    let mut list_jobs = paging();
    list_jobs.push(query("status", job_status, "only jobs in this status"));
    add(
        "/api/jobs",
        "get",
        json!({"summary": "The caller's jobs, newest first", "parameters": list_jobs, "responses": d.page::<TrainingJob>("jobs")}),
    );
    let one_job = d_ok(&mut d, job);
    let jr = d.responses(one_job);
    add(
        "/api/jobs",
        "post",
        json!({"summary": "Queue a training job", "requestBody": d.body::<JobBody>(), "responses": jr.clone()}),
    );
    let est = d_ok(&mut d, estimate);
    add(
        "/api/jobs/estimate",
        "post",
        json!({"summary": "Cost, duration and memory fit of a run", "requestBody": d.body::<JobBody>(), "responses": d.responses(est)}),
    );
    add(
        "/api/jobs/{id}",
        "get",
        json!({"summary": "One job", "parameters": [id_param("job")], "responses": jr.clone()}),
    );
    let compared = d.schema::<RunComparison>();
    let compared = d_ok(&mut d, compared);
    add(
        "/api/jobs/compare",
        "get",
        json!({"summary": "Training runs side by side (2 to 6): the hyperparameters that differ, best and final losses, evaluation, cost, duration and the best run", "parameters": [{"name": "ids", "in": "query", "required": true, "description": "job ids or unique prefixes, comma-separated", "schema": {"type": "string", "minLength": 1, "maxLength": 1000}}], "responses": d.responses(compared)}),
    );
    let plan = d.schema::<SweepPlan>();
    let plan = d_ok(&mut d, plan);
    add(
        "/api/sweeps/plan",
        "post",
        json!({"summary": "What a hyperparameter sweep would run and cost; nothing starts", "requestBody": d.body::<super::routes::SweepBody>(), "responses": d.responses(plan)}),
    );
    let sweep = d.schema::<Sweep>();
    let one_sweep = d_ok(&mut d, sweep.clone());
    let sr = d.responses(one_sweep);
    add(
        "/api/sweeps",
        "post",
        json!({"summary": "Start a hyperparameter sweep", "requestBody": d.body::<super::routes::SweepBody>(), "responses": sr.clone()}),
    );
    let sweeps = d_ok(&mut d, json!({"type": "array", "items": sweep}));
    add(
        "/api/sweeps",
        "get",
        json!({"summary": "The caller's sweeps, newest first", "responses": d.responses(sweeps)}),
    );
    add(
        "/api/sweeps/{id}",
        "get",
        json!({"summary": "One sweep", "parameters": [id_param("sweep")], "responses": sr.clone()}),
    );
    add(
        "/api/sweeps/{id}/cancel",
        "post",
        json!({"summary": "Cancel a sweep and its queued and running jobs", "parameters": [id_param("sweep")], "responses": sr}),
    );
    let consumer = d.schema::<ConsumerStatus>();
    let consumers = d_ok(&mut d, json!({"type": "array", "items": consumer}));
    add(
        "/api/tracking",
        "get",
        json!({"summary": "How the change log's consumers (MLflow, TensorBoard, the webhooks) are doing", "responses": d.responses(consumers)}),
    );
    let hook = d.schema::<WebhookInfo>();
    let hooks = d_ok(&mut d, json!({"type": "array", "items": hook}));
    add(
        "/api/webhooks",
        "get",
        json!({"summary": "The configured webhooks and how their deliveries stand", "responses": d.responses(hooks)}),
    );
    let delivery = d.schema::<WebhookDelivery>();
    let deliveries = d_ok(&mut d, json!({"type": "array", "items": delivery.clone()}));
    add(
        "/api/webhooks/deliveries",
        "get",
        json!({"summary": "The webhook delivery log, newest first", "parameters": [
            {"name": "webhook", "in": "query", "required": false, "description": "only this webhook's", "schema": {"type": "string", "maxLength": 64}},
            {"name": "failed", "in": "query", "required": false, "description": "only those not delivered within their retry window", "schema": {"type": "boolean"}},
            {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
        ], "responses": d.responses(deliveries)}),
    );
    let one_delivery = d_ok(&mut d, delivery);
    add(
        "/api/webhooks/{name}/test",
        "post",
        json!({"summary": "Send a signed webhook.test event to one webhook now", "parameters": [
            {"name": "name", "in": "path", "required": true, "description": "the webhook's name", "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
        ], "responses": d.responses(one_delivery)}),
    );
    add(
        "/api/jobs/{id}/cancel",
        "post",
        json!({"summary": "Cancel a job (it checkpoints first)", "parameters": [id_param("job")], "responses": jr.clone()}),
    );
    let retry_params = json!([
        id_param("job"),
        query(
            "from_scratch",
            json!({"type": "boolean"}),
            "start at step 0 instead of the latest checkpoint"
        ),
        query(
            "checkpoint",
            json!({"type": "integer", "minimum": 0}),
            "continue from the checkpoint at this step"
        ),
        query(
            "backend",
            json!({"type": "string", "minLength": 1, "maxLength": MAX_FIELD_LEN}),
            "run it on this backend instead of the job's own"
        ),
        query(
            "dry_run",
            json!({"type": "boolean"}),
            "answer with the job it would queue (its resume point and estimate), queueing none"
        ),
    ]);
    add(
        "/api/jobs/{id}/retry",
        "post",
        json!({"summary": "A new job with a failed or cancelled job's configuration, continuing from its latest checkpoint", "parameters": retry_params, "responses": jr.clone()}),
    );
    add(
        "/api/evaluations",
        "post",
        json!({"summary": "Queue an evaluation job: each model and its base answer the prompts (or the first model's held-out examples and the probes) on a backend; the job makes no model", "requestBody": d.body::<super::routes::EvaluateBody>(), "responses": jr}),
    );
    let comparison = d.schema::<Comparison>();
    let one_comparison = d_ok(&mut d, comparison);
    add(
        "/api/jobs/{id}/comparison",
        "get",
        json!({"summary": "What an evaluation job measured: every model's answer to every prompt, scored (409 `not_evaluated` before it completes, or for a training job)", "parameters": [id_param("job")], "responses": d.responses(one_comparison)}),
    );
    let pts = d_ok(&mut d, points);
    add(
        "/api/jobs/{id}/metrics",
        "get",
        json!({"summary": "A job's metrics points in step order", "parameters": [id_param("job"), query("from_step", d.schema::<u64>(), "first step"), query("limit", d.schema::<usize>(), "at most this many")], "responses": d.responses(pts)}),
    );
    let logs = d_ok(
        &mut d,
        json!({"type": "array", "items": {"type": "string"}}),
    );
    add(
        "/api/jobs/{id}/logs",
        "get",
        json!({"summary": "The tail of a job's trainer log", "parameters": [id_param("job"), query("lines", d.schema::<usize>(), "lines from the end (default 200; at most 100,000 are answered)")], "responses": d.responses(logs)}),
    );

    add(
        "/api/models",
        "get",
        json!({"summary": "The caller's models, newest first", "parameters": paging(), "responses": d.page::<ModelArtifact>("models")}),
    );
    let evaluation = d.schema::<Evaluation>();
    let one_model = d_ok(
        &mut d,
        json!({"allOf": [model, {"type": "object", "required": ["evaluation"], "properties": {
            "evaluation": {"allOf": [evaluation.clone()], "nullable": true}}}]}),
    );
    add(
        "/api/models/{id}",
        "get",
        json!({"summary": "One model, with its evaluation (null when its run made none)", "parameters": [id_param("model")], "responses": d.responses(one_model)}),
    );
    let one_evaluation = d_ok(&mut d, evaluation);
    add(
        "/api/models/{id}/evaluation",
        "get",
        json!({"summary": "What the model's run measured of it: held-out loss of the base and the adapter, their answers to held-out examples and probes (404 `not_evaluated` when none)", "parameters": [id_param("model")], "responses": d.responses(one_evaluation)}),
    );
    add(
        "/api/models/{id}/export",
        "post",
        json!({"summary": "Queue an export job: the adapter merged into its base (`merged`), converted to GGUF (`gguf`, maybe quantized, maybe with an Ollama Modelfile) or to a GGUF LoRA (`gguf-lora`), checked against base + adapter before it is stored as a model whose parent is the adapter", "parameters": [id_param("model")], "requestBody": d.body::<super::routes::ExportBody>(), "responses": jr.clone()}),
    );
    let files = d_ok(
        &mut d,
        json!({"type": "object", "required": ["model_id", "files"], "properties": {
            "model_id": {"type": "string", "format": "uuid"},
            "files": {"type": "array", "items": {"type": "object", "required": ["path", "size", "sha256", "url"], "properties": {
                "path": {"type": "string"}, "size": {"type": "integer", "minimum": 0}, "sha256": {"type": "string"}, "url": {"type": "string"}}}}}}),
    );
    add(
        "/api/models/{id}/download",
        "get",
        json!({"summary": "Where to fetch each file of a model, with its sha256", "parameters": [id_param("model")], "responses": d.responses(files)}),
    );
    let mut file_ok = d.responses(json!({}));
    file_ok["200"] = json!({"description": "the file's bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
    add(
        "/api/models/{id}/file",
        "get",
        json!({"summary": "One file of a model", "parameters": [id_param("model"), {"name": "path", "in": "query", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_LEN}}], "responses": file_ok}),
    );

    let c = d_ok(&mut d, costs);
    add(
        "/api/costs",
        "get",
        json!({"summary": "What everything cost over a period", "parameters": [query("period", json!({"type": "string", "enum": ["week", "month", "year"]}), "default month")], "responses": d.responses(c)}),
    );
    let mut notes = paging();
    notes.push(query(
        "unread",
        json!({"type": "boolean"}),
        "only unread ones",
    ));
    add(
        "/api/notifications",
        "get",
        json!({"summary": "The caller's notifications, newest first", "parameters": notes, "responses": d.page::<Notification>("notifications")}),
    );
    let count = d_ok(&mut d, json!({"type": "integer", "minimum": 0}));
    add(
        "/api/notifications/{id}/read",
        "post",
        json!({"summary": "Mark one notification read", "parameters": [id_param("notification")], "responses": d.responses(count)}),
    );

    let call_ok = d_ok(&mut d, reply);
    add(
        "/api/v1/call",
        "post",
        json!({"summary": "Any engine request (the typed API the CLI and the dashboard use)", "requestBody": d.body::<Request>(), "responses": d.responses(call_ok)}),
    );
    let mut ev = d.responses(json!({}));
    ev["200"] = json!({"description": "server-sent events: `event: change`, `id: SEQ`, `data:` a change as JSON", "content": {"text/event-stream": {"schema": change}}});
    add(
        "/api/events",
        "get",
        json!({"summary": "The change log after a seq, then live", "parameters": [query("after", d.schema::<u64>(), "the last seq seen (default: now)")], "responses": ev}),
    );
    let mut live = d.responses(json!({}));
    live["200"] = json!({"description": "server-sent events: `event: live`, `data:` a live sample as JSON (progress, metrics, GPU use of running jobs)", "content": {"text/event-stream": {"schema": {"type": "string"}}}});
    add(
        "/api/live",
        "get",
        json!({"summary": "Live samples of running jobs, as they come", "responses": live}),
    );
    let mut chat = d.responses(json!({}));
    let chat_event = d.schema::<crate::chat::ChatEvent>();
    chat["409"]["description"] = json!(
        "the model does not fit in the memory of the engine's machine (reason `does_not_fit`; the message says what it needs and what to do), or an id prefix matches several models"
    );
    chat["200"] = json!({"description": "server-sent events: `event: chat`, `data:` a chat event as JSON (`started`, `delta`s, then `done` or `error`); the stream ends after `done` or `error`", "content": {"text/event-stream": {"schema": chat_event}}});
    add(
        "/api/models/{id}/chat",
        "post",
        json!({"summary": "A chat turn with one of the caller's models (or its base model, with `base`), answered by a worker on the engine's machine; the reply is streamed", "parameters": [id_param("model")], "requestBody": d.body::<crate::chat::ChatBody>(), "responses": chat}),
    );
    let mut prom = d.responses(json!({}));
    prom["200"] = json!({"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}});
    add(
        "/metrics",
        "get",
        json!({"summary": "Counts of records by state, request latencies, subscribers", "responses": prom}),
    );
    add(
        "/api/openapi.json",
        "get",
        json!({"summary": "This document", "security": [], "responses": {"200": {"description": "the OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}}}),
    );

    let mut schemas = d.generator.take_definitions(true);
    for (name, op) in REQUEST_SCHEMAS {
        if let Some(s) = schemas.get_mut(*name) {
            request_limits(s, *op, catalog);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "BrightRun engine",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The engine API of `brightrun serve`, in the seed's shapes. Every route but this document needs a bearer token over TCP.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    })
}

fn d_ok(d: &mut Doc, data: Value) -> Value {
    d.ok(data)
}

/// A tuple (`(String, String)`, `(NaiveDate, f64)`) as OpenAPI 3.0 can say it: an array of
/// exactly its length whose items are any of its members' schemas (3.0 has no tuple form:
/// `items` must be one schema, and `prefixItems` is 3.1's).
fn tuples_as_arrays(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let Some(Value::Array(members)) = obj.get("items") else {
        return;
    };
    let n = members.len();
    let mut distinct: Vec<Value> = Vec::new();
    for m in members {
        if !distinct.contains(m) {
            distinct.push(m.clone());
        }
    }
    let items = match distinct.len() {
        1 => distinct.remove(0),
        _ => json!({"anyOf": distinct}),
    };
    obj.insert("items".into(), items);
    obj.insert("minItems".into(), json!(n));
    obj.insert("maxItems".into(), json!(n));
    obj.remove("additionalItems");
}

/// An integer's range is its Rust type's (schemars gives the format and, for unsigned ones,
/// the minimum): serde refuses a number past it, so the document says so.
fn integer_ranges(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let (min, max): (i128, i128) = match obj.get("format").and_then(Value::as_str) {
        Some("uint8") => (0, u8::MAX.into()),
        Some("uint16") => (0, u16::MAX.into()),
        Some("uint32") => (0, u32::MAX.into()),
        Some("uint64") | Some("uint") => (0, u64::MAX.into()),
        Some("int8") => (i8::MIN.into(), i8::MAX.into()),
        Some("int16") => (i16::MIN.into(), i16::MAX.into()),
        Some("int32") => (i32::MIN.into(), i32::MAX.into()),
        Some("int64") | Some("int") => (i64::MIN.into(), i64::MAX.into()),
        _ => return,
    };
    if obj.get("type").and_then(Value::as_str) != Some("integer") {
        return;
    }
    let number = |n: i128| -> Value {
        if n < 0 {
            json!(n as i64)
        } else {
            json!(n as u64)
        }
    };
    obj.entry("minimum").or_insert_with(|| number(min));
    obj.entry("maximum").or_insert_with(|| number(max));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_document_describes_exactly_the_routes_the_router_serves() {
        let served: BTreeSet<(String, String)> = super::super::all_routes()
            .listed()
            .iter()
            .map(|(p, m)| (p.to_string(), m.as_str().to_ascii_lowercase()))
            .collect();
        let doc = document();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (p.clone(), m.clone()))
            })
            .collect();
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "served but not documented"
        );
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "documented but not served"
        );
    }

    /// What openapi-spec-validator found in the document before (the e2e test runs the real
    /// validator on the served document; this keeps the two mistakes out without it).
    #[test]
    fn every_operation_documents_its_statuses_and_no_schema_is_a_tuple() {
        let doc = document();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.contains_key("200"),
                    "{method} {path}: {responses:?}"
                );
                for (status, r) in responses {
                    assert!(
                        status.len() == 3 && status.chars().all(|c| c.is_ascii_digit()),
                        "{method} {path}: `{status}` is not a status"
                    );
                    assert!(r["description"].is_string(), "{method} {path} {status}");
                }
            }
        }
        fn walk(v: &Value, at: &str) {
            match v {
                Value::Object(m) => {
                    assert!(
                        !m.get("items").is_some_and(Value::is_array),
                        "{at}: tuple items"
                    );
                    assert!(!m.contains_key("prefixItems"), "{at}: prefixItems");
                    for (k, x) in m {
                        walk(x, &format!("{at}/{k}"));
                    }
                }
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .for_each(|(i, x)| walk(x, &format!("{at}/{i}"))),
                _ => {}
            }
        }
        walk(&doc, "");
        let sets = &doc["components"]["schemas"]["JobSpec"]["properties"]["sets"];
        assert_eq!(sets["items"]["minItems"], 2, "{sets}");
        assert_eq!(sets["items"]["maxItems"], 2, "{sets}");
    }
}
