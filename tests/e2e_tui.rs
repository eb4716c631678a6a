//! End to end through the dashboard: the real `brightrun` binary in a real terminal (tmux at
//! 120x40), driven by keys and checked by reading the screen. A JSONL file is added through the
//! in-terminal file browser (typed, with completion), becomes ready, is trained on from
//! Configure (preset fast, the tiny model, an A10G, the estimate on screen, confirmed), the
//! job is followed on the monitor to completion, its model is downloaded to a chosen folder,
//! and quitting gives the shell back a clean terminal. The store is then read with the CLI
//! to check what the screen said.

mod common;

use common::tmux::Tmux;
use common::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;
const TINY: &str = "brightrun/tiny-random-llama";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Kills the trainers a failed run left behind (their own process groups, found through the
/// job folders' pid files and checked against their command lines).
struct Trainers(PathBuf);

impl Drop for Trainers {
    fn drop(&mut self) {
        let Ok(dirs) = std::fs::read_dir(&self.0) else {
            return;
        };
        for d in dirs.flatten() {
            let id = d.file_name().to_string_lossy().into_owned();
            let Some(pid) = std::fs::read_to_string(d.path().join("pid"))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .filter(|p| *p > 0)
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&format!("brightrun-trainer-{id}")) {
                // SAFETY: signalling the process group of a trainer this test started.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// The tails of the dashboard's logs and the trainers' logs, for failure messages.
fn logs(home: &Path) -> String {
    fn tail(p: &Path, out: &mut String) {
        if let Ok(t) = std::fs::read_to_string(p) {
            let lines: Vec<&str> = t.lines().collect();
            let from = lines.len().saturating_sub(40);
            out.push_str(&format!("---- {} ----\n", p.display()));
            out.push_str(&lines[from..].join("\n"));
            out.push('\n');
        }
    }
    let mut out = String::new();
    for dir in [home.join("state/logs"), home.join("data/jobs")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                tail(&p.join("trainer.log"), &mut out);
            } else {
                tail(&p, &mut out);
            }
        }
    }
    out
}

/// The value of a row of the Configure form (the focused panel, drawn with `┃`): the text
/// after the label, up to the panel's border.
fn form_row(screen: &str, label: &str) -> Option<String> {
    screen.lines().find_map(|l| {
        let rest = l
            .strip_prefix(&format!("┃ {label} "))
            .or_else(|| l.strip_prefix(&format!("┃*{label} ")))?;
        Some(rest.split('┃').next().unwrap_or("").trim().to_string())
    })
}

/// The value of a `key  value` line in a side pane drawn with `│` (the estimate).
fn pane_value(screen: &str, key: &str) -> Option<String> {
    screen.lines().find_map(|l| {
        let at = l.find(&format!("│{key} "))?;
        let rest = &l[at + '│'.len_utf8() + key.len()..];
        Some(rest.split('│').next().unwrap_or("").trim().to_string())
    })
}

/// The first `$…` amount in a text.
fn money(text: &str) -> Option<f64> {
    let at = text.find('$')?;
    let num: String = text[at + 1..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    num.parse().ok()
}

/// The first whole number in a text (thousands separators allowed).
fn first_number(text: &str) -> Option<u64> {
    let digits: String = text
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    digits.parse().ok()
}

/// The word after `word` on the first line that has it.
fn word_after<'a>(screen: &'a str, line_has: &str, word: &str) -> Option<&'a str> {
    let line = screen.lines().find(|l| l.contains(line_has))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == word)?;
    words.next()
}

#[test]
fn the_dashboard_takes_a_file_to_a_downloaded_model() {
    let home = Home::new(0);
    let work = home.path().join("work");
    let inputs = work.join("inputs");
    let downloads = work.join("downloads");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::create_dir_all(&downloads).unwrap();
    let text: String = (0..40)
        .map(|i| {
            format!(
                "{{\"messages\":[{{\"role\":\"user\",\"content\":\"What is {i} plus {i}?\"}},{{\"role\":\"assistant\",\"content\":\"{i} plus {i} is {}.\"}}]}}\n",
                2 * i
            )
        })
        .collect();
    std::fs::write(inputs.join("arith.jsonl"), text).unwrap();
    // A second name with the same start, so completion first stops at the common prefix.
    std::fs::write(inputs.join("arith-notes.md"), "not a dataset\n").unwrap();

    let python = trainer_python();
    let _trainers = Trainers(home.path().join("data/jobs"));
    let mut term = Tmux::start(
        &work,
        WIDTH,
        HEIGHT,
        &[
            ("BRIGHTRUN_HOME", home.path().as_os_str()),
            ("BRIGHTRUN_TRAINER_PYTHON", python.as_os_str()),
            ("HF_HUB_OFFLINE", OsStr::new("1")),
            ("TRANSFORMERS_OFFLINE", OsStr::new("1")),
            ("TOKENIZERS_PARALLELISM", OsStr::new("false")),
        ],
        &assert_cmd::cargo::cargo_bin("brightrun"),
    );
    let home_path = home.path().to_path_buf();
    term.on_failure(move || logs(&home_path));

    // ---- the dashboard opens on an empty Datasets tab, in the alternate screen -------------
    term.wait_for_all(
        "the Datasets tab",
        secs(60),
        &["BrightRun", "1 Datasets", "No datasets yet: press a to add"],
    );
    assert_eq!(
        term.display("#{alternate_on}"),
        "1",
        "the dashboard draws on the alternate screen"
    );
    assert_eq!(
        term.display("#{mouse_any_flag}"),
        "1",
        "the dashboard captures the mouse"
    );

    // ---- add the dataset through the file browser, typing with completion --------------------
    term.keys(&["a"]);
    term.wait_for_all(
        "the file browser",
        secs(20),
        &["Add a dataset (JSONL)", "tab complete"],
    );
    let w = work.display().to_string();
    term.keys(&["C-u"]);
    term.type_text(&format!("{w}/inp"));
    // Completion needs the folder's listing on screen first.
    term.wait_for_all(
        "the work folder listed",
        secs(20),
        &[&format!("{w}/inp"), " inputs/"],
    );
    term.keys(&["Tab"]);
    term.wait_for_all(
        "the folder completed",
        secs(20),
        &[&format!("{w}/inputs/"), " arith.jsonl", " arith-notes.md"],
    );
    term.type_text("ar");
    term.keys(&["Tab"]);
    // Two names start with `ar`: completion stops at their common prefix.
    term.wait_for("the common prefix completed", secs(20), |s| {
        s.contains(&format!("{w}/inputs/arith ")) || s.contains(&format!("{w}/inputs/arith│"))
    });
    term.type_text(".");
    term.keys(&["Tab"]);
    term.wait_for("the file name completed", secs(20), |s| {
        s.contains(&format!("{w}/inputs/arith.jsonl")) && !s.contains(" arith-notes.md")
    });
    term.keys(&["Enter"]);

    // ---- it is uploaded, validated and shown ready with its statistics -----------------------
    let screen = term.wait_for("the dataset to become ready", secs(120), |s| {
        !s.contains("Add a dataset (JSONL)")
            && s.lines()
                .any(|l| l.contains("arith") && l.contains("openai_chat") && l.contains(" ready "))
            && s.contains("examples      40")
    });
    assert!(screen.contains("Datasets 1"), "{screen}");
    assert!(screen.contains("status        ready"), "{screen}");
    assert!(screen.contains("file          arith.jsonl"), "{screen}");

    // ---- train on this: Configure with it selected -------------------------------------------
    term.keys(&["t"]);
    let screen = term.wait_for("the Configure form", secs(20), |s| {
        s.contains("New training job")
            && form_row(s, "dataset").is_some_and(|v| v.contains("arith"))
            && pane_value(s, "cost").is_some()
    });
    assert_eq!(
        form_row(&screen, "dataset").unwrap(),
        "◀ arith ▶",
        "{screen}"
    );

    // Preset: cycle to fast.
    term.keys(&["j"]);
    let mut screen = term.wait_for("the preset row selected", secs(20), |s| {
        form_row(s, "preset").is_some_and(|v| v.starts_with('◀'))
    });
    for _ in 0..8 {
        if form_row(&screen, "preset").unwrap() == "◀ fast ▶" {
            break;
        }
        let before = form_row(&screen, "preset").unwrap();
        term.keys(&["l"]);
        screen = term.wait_for("the next preset", secs(20), |s| {
            form_row(s, "preset").is_some_and(|v| v != before)
        });
    }
    assert_eq!(form_row(&screen, "preset").unwrap(), "◀ fast ▶", "{screen}");
    assert_eq!(
        form_row(&screen, "epochs").unwrap(),
        "1",
        "fast is one epoch: {screen}"
    );

    // Base model (below from_model, left at none, and method, left at sft): edit the field.
    term.keys(&["j", "j", "j", "Enter"]);
    term.wait_for_all(
        "the base model being edited",
        secs(20),
        &["(typing: enter keeps"],
    );
    term.keys(&["C-u"]);
    term.type_text(TINY);
    term.keys(&["Enter"]);
    term.wait_for("the base model set and estimated", secs(30), |s| {
        s.contains("┃*base_model")
            // Selected, the row shows ◀ ▶: ←/→ pick from the known models.
            && form_row(s, "base_model")
                .is_some_and(|v| v.trim_matches(|c| c == '◀' || c == '▶' || c == ' ') == TINY)
            && s.contains(&format!("({TINY})"))
            && !s.contains("updating…")
            && !s.contains("(typing: enter keeps")
    });

    // GPU type: the third row from the bottom; cycle to A10G.
    term.keys(&["G", "k", "k"]);
    let mut screen = term.wait_for("the GPU row selected", secs(20), |s| {
        form_row(s, "gpu_type").is_some_and(|v| v.starts_with('◀'))
    });
    for _ in 0..30 {
        if form_row(&screen, "gpu_type")
            .unwrap()
            .starts_with("◀ A10G ")
        {
            break;
        }
        let before = form_row(&screen, "gpu_type").unwrap();
        term.keys(&["l"]);
        screen = term.wait_for("the next GPU type", secs(20), |s| {
            form_row(s, "gpu_type").is_some_and(|v| v != before)
        });
    }
    let gpu = form_row(&screen, "gpu_type").unwrap();
    assert!(gpu.starts_with("◀ A10G ("), "{screen}");
    let rate = format!("${:.2}/h", money(&gpu).expect("the GPU's price"));

    // The estimate follows: the A10G's rate, the tiny model's memory, steps and cost.
    let screen = term.wait_for("the estimate for an A10G", secs(30), |s| {
        pane_value(s, "duration").is_some_and(|v| v.contains(&format!("at {rate}")))
            && !s.contains("updating…")
    });
    let cost_text = pane_value(&screen, "cost").expect("an estimated cost");
    let estimated_cost = money(&cost_text).expect("a cost in dollars");
    let steps = first_number(&pane_value(&screen, "steps").expect("estimated steps")).unwrap();
    assert!(steps >= 1, "{screen}");
    assert!(
        pane_value(&screen, "memory").is_some_and(|v| v.starts_with("fits")),
        "{screen}"
    );
    assert!(screen.contains(&format!("({TINY})")), "{screen}");

    // ---- submit: the confirmation shows the cost; yes creates the job -------------------------
    term.keys(&["s"]);
    let screen = term.wait_for_all(
        "the confirmation",
        secs(20),
        &["Create job?", "y yes", "n no"],
    );
    assert!(
        screen.contains("Train on arith with preset fast"),
        "{screen}"
    );
    assert!(screen.contains("on this machine (1×A10G)"), "{screen}");
    assert!(
        screen.contains(&format!("Estimated cost ${estimated_cost:.2}")),
        "the confirmation shows the estimate's cost ${estimated_cost:.2}: {screen}"
    );
    term.keys(&["y"]);

    // ---- the monitor follows the job to completion --------------------------------------------
    let screen = term.wait_for("the job's monitor", secs(30), |s| {
        s.lines()
            .any(|l| l.contains("Job ") && l.contains(" · arith · ") && l.contains("1×A10G"))
    });
    let job_short = word_after(&screen, " · arith · ", "Job")
        .expect("the job's short id")
        .to_string();
    assert_eq!(job_short.len(), 8, "{screen}");
    // Completion raises high-priority notifications, shown as toasts over the monitor for a
    // few seconds; the monitor is read once they are gone.
    let done_toast = format!("Job {job_short} completed");
    let mut toast_seen = false;
    let screen = term.wait_for("the job to complete", secs(900), |s| {
        if s.contains("failed · stage") || s.contains("cancelled · stage") {
            term.fail("the job did not complete", s);
        }
        toast_seen |= s.contains(&done_toast);
        s.contains("completed · stage completed") && s.contains("[completed]") && !s.contains('╭')
    });
    assert!(toast_seen, "a toast announced `{done_toast}`");
    // Progress, epoch and step, the cost against the estimate.
    assert!(screen.contains("100.0%"), "{screen}");
    assert!(screen.contains("epoch 1/1"), "{screen}");
    assert!(
        screen.contains(&format!("step {steps}/{steps}")),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("of est. ${estimated_cost:.2}")),
        "{screen}"
    );
    // The loss chart has every step's point and is drawn (braille), the sparklines too.
    assert!(
        screen.contains(&format!("Loss ━ training ━ validation {steps} pts")),
        "{screen}"
    );
    let braille = screen
        .chars()
        .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
        .count();
    assert!(braille >= 10, "the loss chart is drawn: {screen}");
    for spark in ["│lr ", "│grad ", "│tok/s "] {
        let v = screen.lines().find(|l| l.contains(spark)).unwrap_or("");
        assert!(!v.contains(" – "), "{spark} has a value: {screen}");
    }
    assert!(screen.contains('█'), "sparklines are drawn: {screen}");
    // The log followed the trainer to its end.
    for line in ["[training]", "[validating]", "[saving]", "[completed]"] {
        assert!(screen.contains(line), "the log shows {line}: {screen}");
    }

    // Back to the list: the job's row.
    term.keys(&["Escape"]);
    let screen = term.wait_for("the job list", secs(20), |s| {
        s.lines()
            .any(|l| l.contains(&job_short) && l.contains("completed"))
            && s.contains("Jobs 1")
    });
    let row = screen.lines().find(|l| l.contains(&job_short)).unwrap();
    assert!(row.contains("arith") && row.contains("100%"), "{screen}");

    // ---- its model: open it, download it to a chosen folder -----------------------------------
    term.keys(&["o"]);
    let screen = term.wait_for("the model's detail", secs(20), |s| {
        s.contains("Models 1") && s.contains(&format!("from job {job_short}"))
    });
    let model_short = {
        let line = screen
            .lines()
            .find(|l| l.contains(&format!("from job {job_short}")))
            .unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "from").unwrap();
        words[at - 1].trim_start_matches('┃').to_string()
    };
    assert_eq!(model_short.len(), 8, "{screen}");
    assert!(
        screen.contains(&format!("base model    {TINY}")),
        "{screen}"
    );
    assert!(screen.contains("hardware      1×A10G"), "{screen}");
    // Quality metrics from the run, the validation loss included.
    let validation = screen
        .lines()
        .find_map(|l| l.trim_start_matches('┃').strip_prefix("validation    "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(
        validation.is_some_and(f64::is_finite),
        "a validation loss: {screen}"
    );
    assert!(
        screen.contains(&format!("steps         {steps} over 1 epoch")),
        "{screen}"
    );

    term.keys(&["d"]);
    term.wait_for_all(
        "the download prompt",
        secs(20),
        &["to folder", "tab completes a folder; enter downloads"],
    );
    term.keys(&["C-u"]);
    term.type_text(&format!("{w}/dow"));
    term.wait_for_all("the typed folder", secs(20), &[&format!("{w}/dow")]);
    // One Tab opens the folder browser and completes as soon as the folder is listed.
    term.keys(&["Tab"]);
    term.wait_for_all(
        "the folder browser, completed",
        secs(20),
        &[
            "Download to folder",
            "enter download here",
            &format!("{w}/downloads/"),
        ],
    );
    term.type_text("adapter");
    term.wait_for_all(
        "the folder typed",
        secs(20),
        &[&format!("{w}/downloads/adapter")],
    );
    term.keys(&["Enter"]);
    let target = downloads.join("adapter");
    let screen = term.wait_for("the download to finish", secs(60), |s| {
        s.contains(&format!("files to {}", target.display()))
    });
    let downloaded = word_after(
        &screen,
        &format!("files to {}", target.display()),
        "downloaded",
    )
    .and_then(|n| n.parse::<usize>().ok())
    .expect("the number of files downloaded");
    assert!(target.join("adapter_model.safetensors").is_file());
    assert!(target.join("adapter_config.json").is_file());

    // ---- quit: the shell gets its terminal back ----------------------------------------------
    term.keys(&["q"]);
    let screen = term.wait_for_exit(secs(60));
    assert!(screen.contains("[exited 0]"), "brightrun exits 0: {screen}");
    assert!(
        !screen.contains("BrightRun"),
        "the dashboard's screen is gone: {screen}"
    );
    let tty: Vec<&str> = screen
        .lines()
        .find_map(|l| l.trim().strip_prefix("[tty "))
        .unwrap()
        .trim_end_matches(']')
        .split_whitespace()
        .collect();
    for flag in ["isig", "icanon", "echo"] {
        assert!(tty.contains(&flag), "raw mode is off ({flag}): {tty:?}");
    }
    assert_eq!(
        term.display("#{alternate_on}"),
        "0",
        "the alternate screen is left"
    );
    assert_eq!(
        term.display("#{mouse_any_flag}"),
        "0",
        "mouse capture is off"
    );
    assert_eq!(term.display("#{cursor_flag}"), "1", "the cursor is shown");
    drop(term);

    // ---- the store agrees with the screen (one process at a time holds it) --------------------
    let datasets = home.json(&["datasets", "list", "--json"], 0);
    let datasets = datasets.as_array().unwrap();
    assert_eq!(datasets.len(), 1, "{datasets:?}");
    assert_eq!(datasets[0]["status"], "ready");
    assert_eq!(datasets[0]["name"], "arith");

    let job = home.json(&["jobs", "show", &job_short, "--json"], 0);
    assert!(job["id"].as_str().unwrap().starts_with(&job_short));
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["gpu_config"]["gpu_type"], "A10G");
    assert_eq!(job["gpu_config"]["gpu_count"], 1);
    assert_eq!(job["hyperparameters"]["base_model"], TINY);
    assert_eq!(job["hyperparameters"]["epochs"], 1);
    assert_eq!(job["total_steps"].as_u64(), Some(steps));
    assert_eq!(job["dataset_id"], datasets[0]["id"]);
    let est = job["estimated_cost"].as_f64().unwrap();
    assert!(
        (est - estimated_cost).abs() < 0.006,
        "the job's estimate {est} is what the screen showed ({estimated_cost})"
    );

    let model = home.json(&["models", "show", &model_short, "--json"], 0);
    assert!(model["id"].as_str().unwrap().starts_with(&model_short));
    assert_eq!(model["job_id"], job["id"]);
    assert_eq!(job["artifact_id"], model["id"]);
    let files = model["files"].as_array().unwrap();
    assert_eq!(files.len(), downloaded, "the screen counted every file");
    let on_disk = std::fs::read_dir(&target).unwrap().count();
    assert_eq!(
        on_disk,
        files.len(),
        "exactly the model's files are in {target:?}"
    );
    for f in files {
        let p = target.join(f["path"].as_str().unwrap());
        assert!(p.is_file(), "{p:?} was downloaded");
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            f["size"].as_u64().unwrap(),
            "{p:?}"
        );
        assert_eq!(sha256_file(&p), f["sha256"].as_str().unwrap(), "{p:?}");
    }
}
