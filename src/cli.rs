//! The command line. With no subcommand, `brightrun` opens the dashboard.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "brightrun",
    version,
    about = "LoRA fine-tuning from your terminal: datasets, estimates, training runs, adapters.",
    long_about = "LoRA fine-tuning from your terminal.\n\nRun with no command to open the dashboard. \
Data lives in the XDG data dir (or under $BRIGHTRUN_HOME when set)."
)]
pub struct Cli {
    /// Colour theme for the dashboard (a name from themes/ or a TOML file). Only the
    /// dashboard (no command) has one, so subcommands' help leaves it out.
    #[arg(long)]
    pub theme: Option<String>,
    /// Attach to this engine instead of finding one: `unix:PATH` or `http://HOST:PORT`
    /// (with BRIGHTRUN_TOKEN). Without it, a daemon serving this home is used when it
    /// answers, and the engine is embedded otherwise.
    #[arg(long, global = true, env = "BRIGHTRUN_ENGINE", value_name = "ADDRESS")]
    pub engine: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import, inspect and manage training datasets.
    #[command(subcommand)]
    Datasets(DatasetsCmd),
    /// Estimate cost, duration and GPU-memory fit of a run without creating it.
    Estimate {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Create, follow, cancel and retry training jobs.
    #[command(subcommand)]
    Jobs(JobsCmd),
    /// Trained LoRA adapters: list, inspect, download.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// What everything cost, by type, day and job.
    Costs {
        /// week, month or year.
        #[arg(long, default_value = "month")]
        period: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List notifications, or mark them read.
    Notifications {
        #[command(subcommand)]
        cmd: Option<NotificationsCmd>,
        /// Only unread ones.
        #[arg(long)]
        unread: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Run the engine as a daemon: it owns the store, runs the background work, and serves
    /// every CLI and dashboard on a Unix socket (and TCP with tokens) until SIGTERM/Ctrl-C.
    #[command(alias = "engine")]
    Serve {
        /// Also listen on TCP (HOST:PORT); every request then needs a bearer token.
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// The Unix socket to serve (default: engine.sock in the data dir).
        #[arg(long, value_name = "PATH")]
        socket: Option<std::path::PathBuf>,
    },
    /// Bearer tokens for clients that attach over TCP.
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// Show or locate the configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The object store (local folder or S3): check that it answers.
    #[command(subcommand)]
    Storage(StorageCmd),
    /// Hyperparameter sweeps (`jobs sweep` starts one): list, show, cancel.
    #[command(subcommand)]
    Sweeps(SweepsCmd),
    /// The experiment trackers and webhooks fed from the change log: how far each is, and
    /// why it is behind.
    #[command(subcommand)]
    Tracking(TrackingCmd),
    /// Webhooks (`[[webhooks]]` in config.toml): list them, send a test, read the delivery log.
    #[command(subcommand)]
    Webhooks(WebhooksCmd),
    /// The shared Postgres mirror (`[mirror] url`): lag, push now, compare.
    #[command(subcommand)]
    Mirror(MirrorCmd),
    /// Copies of the store in the data dir's backups/: make one, list them, put one back.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// The cluster backends (`[backends.NAME]`: local, Ray, RunPod) and their health.
    #[command(subcommand)]
    Backends(BackendsCmd),
    /// Checks the store, the config, stored objects against the records (missing and
    /// orphaned), job folders, stale temporary files and interrupted uploads. Exit 0 when
    /// clean (or all was repaired), 1 when problems remain.
    Doctor {
        /// Fix what is safe: remove stale temporary files, move orphaned objects and job
        /// folders into the data dir's quarantine/ folder. Never changes or deletes a record.
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackendsCmd {
    /// Each backend: its kind, where it answers, how its trainer reaches the data, and its
    /// latest health (checked now when none is known).
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Asks every backend now (all at once); exit 0 only when all answer, 3 when one is
    /// unreachable.
    Check {
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// A consistent copy of the store now (through the running engine, if one serves).
    Create {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The backups, oldest first: time, size, schema version, why it was made.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Puts a backup in place of the store (refused while an engine or daemon has it open);
    /// the store it replaces is kept as a `replaced` backup.
    Restore {
        /// The backup's id (from `backup list`), or `latest`.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum SweepsCmd {
    /// Every sweep, newest first: status, runs done, spent, the best run.
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// One sweep: its spec, each run's values, job, status and losses, and the best.
    Show {
        /// A sweep id or the first characters of one.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Stops a sweep: no further run starts; its queued and running jobs are cancelled.
    Cancel {
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum TrackingCmd {
    /// Each of MLflow (`[tracking.mlflow]`), TensorBoard (`[tracking.tensorboard]`) and the
    /// webhooks: where it sends, the changes it has not applied yet, its last error.
    Status {
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum WebhooksCmd {
    /// The configured webhooks: endpoint, events, whether the key is set, deliveries.
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Sends a signed `webhook.test` event to one webhook now and shows its answer.
    Test {
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The delivery log, newest first: event, state, tries, last answer.
    Deliveries {
        /// Only those not delivered within their retry window.
        #[arg(long)]
        failed: bool,
        /// Only this webhook's.
        #[arg(long, value_name = "NAME")]
        webhook: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum StorageCmd {
    /// Reachability, buckets present, and a put/get/delete probe, each with its verdict;
    /// exit 0 only when all pass.
    Check {
        /// Create missing buckets.
        #[arg(long)]
        create_buckets: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// What a sweep runs (`jobs sweep`).
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// A swept hyperparameter and its values, e.g. --grid learning_rate=1e-4,5e-5
    /// --grid lora_rank=8,16 (every combination runs).
    #[arg(long = "grid", value_name = "KEY=V1,V2,…")]
    pub grid: Vec<String>,
    /// This many random draws from the --range values (crossed with the grid).
    #[arg(long, value_name = "N")]
    pub random: Option<u32>,
    /// Where random draws come from: KEY=LOW:HIGH, or KEY=LOW:HIGH:log for log-uniform,
    /// e.g. --range learning_rate=1e-5:1e-3:log.
    #[arg(long = "range", value_name = "KEY=LOW:HIGH[:log]")]
    pub ranges: Vec<String>,
    /// The random draws' seed (default: a fresh one, shown in the plan).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Runs training at once (1 to 16).
    #[arg(long, default_value_t = 1)]
    pub max_parallel: u32,
    /// US dollars: no run starts that could take the sweep's cost past this.
    #[arg(long, value_name = "USD")]
    pub budget: Option<f64>,
    /// Stop a run whose validation loss is worse than its siblings' median at the same
    /// step by this margin: 10% or 0.1.
    #[arg(long, value_name = "MARGIN")]
    pub stop_worse: Option<String>,
    /// A name for lists (default: the swept keys).
    #[arg(long)]
    pub name: Option<String>,
}

/// What to train and on what: shared by `estimate` and `jobs create`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The dataset (id or unique prefix); it must be ready.
    #[arg(long)]
    pub dataset: String,
    /// fast, balanced (default), quality, custom, or a preset from config.
    #[arg(long, default_value = "")]
    pub preset: String,
    /// GPU type, e.g. A100-80GB, H100, L40S, A10G, RTX-4090 (any case).
    #[arg(long)]
    pub gpu: Option<String>,
    /// Number of GPUs (1..8).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Override a hyperparameter, e.g. --set learning_rate=1e-4 --set lora_rank=32
    /// (parameters_billions=N gives an unknown base model's size).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Cluster backend: a `[backends.NAME]` entry, or `local` (default: `[training]
    /// default_backend`). `brightrun backends list` shows them.
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Train on from a model's adapter (its id, a prefix or its name): more epochs on the same
    /// data, or new data for the same base. Its base model and LoRA shape are kept.
    #[arg(long, value_name = "MODEL")]
    pub from_model: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum JobsCmd {
    /// Queue a training job (shows the estimate and asks first unless --yes).
    Create {
        #[command(flatten)]
        run: RunArgs,
        /// Do not ask for confirmation of the cost.
        #[arg(long, short)]
        yes: bool,
        /// Allow a run that takes the month over its budget.
        #[arg(long)]
        over_budget: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List jobs, newest first.
    #[command(alias = "ls")]
    List {
        /// Only jobs in this status (queued, initializing, running, completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show a job.
    Show {
        /// The job's id, or the first characters of it that match only one (as `jobs list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Follow a job to its end, running the engine meanwhile. Exit 0 completed, 1 failed or cancelled.
    Watch {
        /// The job's id, or the first characters of it that match only one (as `jobs list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Cancel a queued or running job (the trainer saves a checkpoint first).
    Cancel {
        /// The job's id, or the first characters of it that match only one (as `jobs list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Queue a new job with the configuration of a failed or cancelled one (shows its cost
    /// and asks first unless --yes, as create does).
    ///
    /// It continues from the job's latest stored checkpoint (or its folder on this machine),
    /// with the cost of the steps that remain, on the same backend or another (--backend).
    Retry {
        /// The job's id, or the first characters of it that match only one (as `jobs list` shows).
        id: String,
        /// Start at step 0 instead of the latest checkpoint.
        #[arg(long, conflicts_with = "checkpoint")]
        from_scratch: bool,
        /// Continue from the checkpoint at this step (`jobs show` lists them).
        #[arg(long, value_name = "STEP")]
        checkpoint: Option<u64>,
        /// Run it on this backend (`backends` lists them) instead of the job's own.
        #[arg(long, value_name = "NAME")]
        backend: Option<String>,
        /// Do not ask for confirmation of the cost.
        #[arg(long, short)]
        yes: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Continue a failed or cancelled job from one of its checkpoints (`jobs retry ID
    /// --checkpoint STEP`).
    Resume {
        /// The job's id, or the first characters of it that match only one (as `jobs list` shows).
        id: String,
        /// The checkpoint's step (`jobs show` lists them).
        #[arg(long, value_name = "STEP")]
        checkpoint: u64,
        /// Run it on this backend (`backends` lists them) instead of the job's own.
        #[arg(long, value_name = "NAME")]
        backend: Option<String>,
        /// Do not ask for confirmation of the cost.
        #[arg(long, short)]
        yes: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// A hyperparameter sweep: the run given by --dataset/--preset/--set at every
    /// combination of the --grid values (and of --random draws from --range), --max-parallel
    /// at a time, within --budget. Shows the total estimate and asks before anything starts.
    Sweep {
        #[command(flatten)]
        sweep: SweepArgs,
        /// Do not ask for confirmation of the cost.
        #[arg(long, short)]
        yes: bool,
        /// Allow a sweep whose runs together take the month over its budget (each run still
        /// stops at it).
        #[arg(long)]
        over_budget: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Training runs side by side: the hyperparameters that differ, best and final losses,
    /// evaluation, cost and duration; the best run is marked.
    Compare {
        /// 2 to 6 job ids, or the first characters of each that match only one.
        #[arg(num_args = 2..=6, required = true, value_name = "ID")]
        ids: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The job's log: its stages, checkpoints and the trainer's messages (as the dashboard's
    /// log pane shows them), then the end of the trainer's stderr.
    Logs {
        /// The job's id, or the first characters of it that match only one (as `jobs list` shows).
        id: String,
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// A job's metrics points.
    Metrics {
        /// The job's id, or the first characters of it that match only one (as `jobs list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// List model artifacts, newest first.
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show a model: quality metrics, training summary, configuration, files.
    Show {
        /// The model's id, or the first characters of it that match only one (as `models list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The base models the estimate knows the size of (built-in and from config); any other
    /// Hugging Face id needs --set parameters_billions=N.
    Base {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Download a model's adapter files (sha256 verified).
    Download {
        /// The model's id, or the first characters of it that match only one (as `models list` shows).
        id: String,
        /// Folder to write into (created if missing).
        #[arg(long)]
        to: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print a presigned download URL to share (S3 stores only).
    Url {
        /// The model's id, or the first characters of it that match only one (as `models list` shows).
        id: String,
        /// Which file (default: the adapter's weights).
        #[arg(long)]
        file: Option<String>,
        /// How long it lasts: 30m, 1h, 24h, 7d (at most 7 days).
        #[arg(long, default_value = "24h")]
        expires: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Talk to a model: its adapter (or, with --base, its base model) answers on the engine's
    /// machine, the reply streamed as it comes. With --prompt it answers once; without, a
    /// conversation on the terminal (`/base` switches between adapter and base, `/quit` or
    /// Ctrl-D ends it), or one reply per line read when stdin is not a terminal.
    Chat {
        /// The model's id, or the first characters of it that match only one (as `models list` shows).
        id: String,
        /// Answer with the base model (the adapter disabled).
        #[arg(long)]
        base: bool,
        /// A system message that opens the conversation.
        #[arg(long)]
        system: Option<String>,
        /// The longest reply, in tokens (default 256; at most `[playground] max_new_tokens_limit`).
        #[arg(long)]
        max_new_tokens: Option<u32>,
        /// 0 (the default) answers greedily; above 0 samples at that temperature (at most 10).
        #[arg(long)]
        temperature: Option<f32>,
        /// Answer this one prompt and exit.
        #[arg(long)]
        prompt: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Make a model of a job's checkpoint on the engine's machine (an early step that was
    /// better than the end); `jobs show` lists the checkpoints.
    FromCheckpoint {
        /// The job's id, or the first characters of it that match only one (as `jobs list` shows).
        job: String,
        /// The checkpoint's step.
        #[arg(long)]
        step: u64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Judge models side by side: each model and its base answer a prompt set on a backend
    /// (an evaluation job, queued, costed and followed like a training job), each answer
    /// scored against the reference where the file gives one. Without --prompts, the first
    /// model's held-out examples and the probes. Prints the comparison when it completes
    /// (`jobs show ID` prints it again).
    Eval {
        /// Models: ids, the first characters of one, or names (as `models list` shows); at most 8.
        #[arg(required = true, num_args = 1..)]
        models: Vec<String>,
        /// A JSONL file of prompts: chat `messages` (a last assistant turn is the reference),
        /// `prompt`/`completion`, ShareGPT or Alpaca records; references are optional.
        #[arg(long)]
        prompts: Option<PathBuf>,
        /// The longest answer, in tokens (default `[evaluation] max_new_tokens`).
        #[arg(long)]
        max_new_tokens: Option<u32>,
        /// Where it runs (default: the configured default backend).
        #[arg(long)]
        backend: Option<String>,
        /// Queue it and return (follow it with `jobs watch ID`).
        #[arg(long)]
        detach: bool,
        /// Go over the monthly budget without asking.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Export a model for serving: merged into its base (safetensors any transformers or vLLM
    /// user loads), converted to GGUF for llama.cpp (maybe quantized, with --ollama a
    /// Modelfile), or the adapter alone as a GGUF LoRA. An export is a job (queued, costed,
    /// followed, cancelled like training) on a backend, and is checked against base + adapter
    /// before it is stored as a model of its own (`models list` shows its kind).
    Export {
        /// The adapter: its id, the first characters of it, or its name (as `models list` shows).
        model: String,
        /// What to make: `merged`, `gguf` or `gguf-lora`.
        #[arg(long, value_parser = ["merged", "gguf", "gguf-lora"])]
        format: String,
        /// The tensors' type: `f16` (default), `bf16` or `f32`.
        #[arg(long, value_parser = ["f16", "bf16", "f32"])]
        dtype: Option<String>,
        /// A llama.cpp quantization for a GGUF: q8_0, q4_k_m, q5_k_m, q6_k, …
        #[arg(long)]
        quantize: Option<String>,
        /// Also write an Ollama Modelfile (with --format gguf).
        #[arg(long)]
        ollama: bool,
        /// The exported model's name (default: the adapter's name and version, and the format).
        #[arg(long)]
        name: Option<String>,
        /// The Modelfile's SYSTEM prompt (with --ollama).
        #[arg(long)]
        system: Option<String>,
        /// Where it runs (default: the configured default backend).
        #[arg(long)]
        backend: Option<String>,
        /// The GPU type (default: the backend's).
        #[arg(long)]
        gpu_type: Option<String>,
        /// Queue it and return (follow it with `jobs watch ID`).
        #[arg(long)]
        detach: bool,
        /// Queue without asking (and go over the monthly budget).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete a model. Its stored files are kept unless --purge.
    #[command(alias = "delete")]
    Rm {
        /// The model's id, or the first characters of it that match only one (as `models list` shows).
        id: String,
        /// Delete the stored files too.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum NotificationsCmd {
    /// Mark one notification (or --all) read.
    Read {
        /// The notification's id, or the first characters of it that match only one.
        id: Option<String>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Args, Debug, Clone, Copy)]
pub struct JsonFlag {
    /// Print one JSON document on stdout (a stable interface for scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum DatasetsCmd {
    /// Import a JSONL (or JSON array) file and validate it.
    ///
    /// Validation runs right after the upload. Without --wait the exit status says only whether
    /// the import worked; with --wait it follows the verdict: 0 ready, 1 error, 2 usage or I/O.
    Add {
        file: PathBuf,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Make the exit status follow the validation verdict.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List datasets, newest first.
    #[command(alias = "ls")]
    List {
        /// Only datasets in this status (uploading, validating, ready, error).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show a dataset: statistics, sample, validation problems.
    Show {
        /// The dataset's id, or the first characters of it that match only one (as `datasets list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Validate a dataset again (e.g. after changing the tokenizer or hold-out in config).
    Validate {
        /// The dataset's id, or the first characters of it that match only one (as `datasets list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Rename a dataset.
    Rename {
        /// The dataset's id, or the first characters of it that match only one (as `datasets list` shows).
        id: String,
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Set a dataset's description.
    Describe {
        /// The dataset's id, or the first characters of it that match only one (as `datasets list` shows).
        id: String,
        description: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete a dataset (refused while a job uses it). Asks first, naming the jobs and models
    /// made from it; without a terminal to ask on, --yes is needed. The stored file is kept
    /// unless --purge.
    #[command(alias = "delete")]
    Rm {
        /// The dataset's id, or the first characters of it that match only one (as `datasets list` shows).
        id: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
        /// Delete the stored file too.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Continue an upload that broke off (a killed `datasets add`); with S3 the parts already
    /// stored are not sent again.
    Resume {
        /// The dataset's id, or the first characters of it that match only one (as `datasets list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show what a base model will learn from the dataset: an example rendered through the
    /// model's chat template token by token, the tokens that carry loss marked (the trainer's
    /// own code decides), or exact counts over the whole dataset (--stats).
    ///
    /// Runs on the engine's machine with the trainer's environment; the model's tokenizer
    /// comes from the Hugging Face cache or a local folder. Cached per dataset, model and
    /// length.
    Inspect {
        /// The dataset's id, or the first characters of it that match only one (as `datasets list` shows).
        id: String,
        /// The base model (a Hub id or a local folder); the config's default_base_model when
        /// none.
        #[arg(long, value_name = "BASE")]
        model: Option<String>,
        /// The example to show, 0-based among the dataset's records (default: the first).
        #[arg(long, value_name = "N", conflicts_with_all = ["line", "stats"])]
        example: Option<u64>,
        /// The example on this line of the file (1-based).
        #[arg(long, value_name = "L", conflicts_with = "stats")]
        line: Option<u64>,
        /// The run's max_seq_length, where the cut is marked (the default preset's when none).
        #[arg(long, value_name = "N")]
        max_seq_length: Option<u32>,
        /// Exact counts over the whole dataset: tokens, trained tokens, examples over
        /// max_seq_length and the tokens they lose, packing efficiency. Estimates use them.
        #[arg(long)]
        stats: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Make a new dataset from the valid examples of one with a few bad ones, and report
    /// what was dropped (line and reason).
    Clean {
        /// The dataset's id, or the first characters of it that match only one (as `datasets list` shows).
        id: String,
        /// Also drop examples that exactly repeat an earlier one.
        #[arg(long)]
        drop_duplicates: bool,
        /// The new dataset's name (default: the old one with " (clean)").
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Print the effective configuration, with secrets masked.
    Show {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print where config, data, logs and the trainer cache live.
    Paths {
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// Make a new token and print it (once: only its hash is kept).
    Create {
        /// The user it acts for (a new name is a new user); default: the profile's user.
        #[arg(long)]
        user: Option<String>,
        /// When it stops being accepted: a duration from now (`90m`, `12h`, `30d`, `8w`) or a
        /// date (`2027-01-31`, RFC 3339 `2027-01-31T18:00:00Z`). Default: never.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List tokens (never their secrets), with their expiry and last use.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Revoke a token by its id (or a unique prefix).
    Revoke {
        /// The token's id, or the first characters of it that match only one (as `tokens list` shows).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum MirrorCmd {
    /// In sync, how many changes behind, or unreachable (and why); the last error.
    Status {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Push now and return once PostgreSQL holds everything committed so far.
    Sync {
        /// Give up after this many seconds (exit 3).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Compare row counts and checksums of every table with PostgreSQL; list the
    /// differences and exit 1 when there is one.
    Verify {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Apply the mirror's schema migrations to PostgreSQL now (the mirror also applies them
    /// when it starts), e.g. before any engine connects. Owner only.
    Migrate {
        /// Apply nothing: print the SQL of the migrations the database lacks on stdout (to
        /// read, or to apply by hand with psql), and what is applied already on stderr.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
}
