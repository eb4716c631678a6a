//! `GET /api/openapi.json`: the daemon's routes as an OpenAPI 3.0 document whose schemas are
//! generated from the very types the routes decode and encode (schemars), so the document
//! cannot drift from the code. Schemathesis tests the live daemon against it.

use super::routes::{JobBody, NewDatasetBody, PatchDatasetBody};
use crate::api::*;
use crate::domain::*;
use crate::events::Sequenced;
use crate::training::Estimate;
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Value, json};

struct Doc {
    generator: SchemaGenerator,
}

impl Doc {
    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
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
                "page": {"type": "integer", "minimum": 1},
                "limit": {"type": "integer", "minimum": 1},
                "totalPages": {"type": "integer", "minimum": 0},
            }
        });
        self.ok(data)
    }

    fn error(&mut self) -> Value {
        let code = self.schema::<ErrorCode>();
        json!({"content": {"application/json": {"schema": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": {"type": "string"},
                "details": {"type": "string", "nullable": true},
                "code": code,
                "field": {"type": "string", "nullable": true},
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
            ("409", "the record's state refuses it"),
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

fn id_param(what: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": format!("a {what} id or unique prefix"), "schema": {"type": "string", "minLength": 1, "maxLength": 64}})
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn paging() -> Vec<Value> {
    vec![
        query(
            "page",
            json!({"type": "integer", "minimum": 1}),
            "1-based page",
        ),
        query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 100}),
            "records per page (default 20)",
        ),
    ]
}

/// The whole document.
pub fn document() -> Value {
    let mut d = Doc {
        generator: SchemaSettings::openapi3().into_generator(),
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
        json!({"summary": "Delete a dataset (refused while an active job uses it)", "parameters": [id_param("dataset")], "responses": ds.clone()}),
    );
    add(
        "/api/datasets/{id}/confirm",
        "post",
        json!({"summary": "Hand an uploaded dataset to the validator", "parameters": [id_param("dataset")], "responses": ds.clone()}),
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
    add(
        "/api/jobs/{id}/cancel",
        "post",
        json!({"summary": "Cancel a job (it checkpoints first)", "parameters": [id_param("job")], "responses": jr.clone()}),
    );
    add(
        "/api/jobs/{id}/retry",
        "post",
        json!({"summary": "A new job with a failed or cancelled job's configuration", "parameters": [id_param("job")], "responses": jr}),
    );
    let pts = d_ok(&mut d, points);
    add(
        "/api/jobs/{id}/metrics",
        "get",
        json!({"summary": "A job's metrics points in step order", "parameters": [id_param("job"), query("from_step", json!({"type": "integer", "minimum": 0}), "first step"), query("limit", json!({"type": "integer", "minimum": 0}), "at most this many")], "responses": d.responses(pts)}),
    );
    let logs = d_ok(
        &mut d,
        json!({"type": "array", "items": {"type": "string"}}),
    );
    add(
        "/api/jobs/{id}/logs",
        "get",
        json!({"summary": "The tail of a job's trainer log", "parameters": [id_param("job"), query("lines", json!({"type": "integer", "minimum": 0, "maximum": 100000}), "lines from the end")], "responses": d.responses(logs)}),
    );

    add(
        "/api/models",
        "get",
        json!({"summary": "The caller's models, newest first", "parameters": paging(), "responses": d.page::<ModelArtifact>("models")}),
    );
    let one_model = d_ok(&mut d, model);
    add(
        "/api/models/{id}",
        "get",
        json!({"summary": "One model", "parameters": [id_param("model")], "responses": d.responses(one_model)}),
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
        json!({"summary": "One file of a model", "parameters": [id_param("model"), {"name": "path", "in": "query", "required": true, "schema": {"type": "string", "minLength": 1}}], "responses": file_ok}),
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
        json!({"summary": "The change log after a seq, then live", "parameters": [query("after", json!({"type": "integer", "minimum": 0}), "the last seq seen (default: now)")], "responses": ev}),
    );

    let schemas = d.generator.take_definitions(true);
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
