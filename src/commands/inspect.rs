//! `datasets inspect`: an example as the trainer will train it, token by token, or exact counts
//! over the dataset. On a terminal, trained tokens are green and masked ones dim; piped (or
//! with `NO_COLOR`), trained runs are wrapped in `⟦…⟧`. Special tokens are shown as `⟨…⟩`
//! either way, and the text of every token is made visible (a newline is `↵` then a line
//! break; other control characters never reach the terminal).

use super::exit;
use super::output::{self, count, prose};
use anyhow::Result;
use brightrun_engine::api::{Api, EngineApi, InspectAt};
use brightrun_engine::domain::{
    DatasetInspection, ExampleInspection, InspectedToken, InspectionWarning,
};
use brightrun_engine::events::{EngineEvent, ProgressTask};
use std::io::IsTerminal;

/// What `datasets inspect` was asked.
pub struct Inspect {
    pub id: String,
    pub model: Option<String>,
    pub at: InspectAt,
    pub max_seq_length: Option<u32>,
    pub stats: bool,
}

pub async fn run(api: &dyn EngineApi, what: Inspect, json: bool) -> Result<i32> {
    if what.stats {
        let spinner = if !json && std::io::stderr().is_terminal() {
            counting(api).await
        } else {
            None
        };
        let s = api
            .inspect_stats(&what.id, what.model, what.max_seq_length)
            .await;
        if let Some((bar, task)) = spinner {
            task.abort();
            bar.finish_and_clear();
        }
        let s = s?;
        if json {
            output::json(&s)?;
        } else {
            print_stats(&s);
        }
        return Ok(exit::OK);
    }
    let x = api
        .inspect_example(&what.id, what.model, what.at, what.max_seq_length)
        .await?;
    if json {
        output::json(&x)?;
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print_example(&x, colour);
    }
    Ok(exit::OK)
}

/// Shows the trainer's progress while it counts (a 200 MB file takes minutes) on stderr, from
/// the engine's live events: the spinner, and the task that feeds it (aborted when the reply
/// comes). The stream is opened before the request, so no progress is missed.
async fn counting(
    api: &dyn EngineApi,
) -> Option<(indicatif::ProgressBar, tokio::task::JoinHandle<()>)> {
    let mut events = api.live().await.ok()?;
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message("counting with the trainer…");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let shown = spinner.clone();
    let task = tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(event) = events.next().await {
            if let EngineEvent::Progress(p) = event
                && matches!(p.task, ProgressTask::Inspection(_))
            {
                shown.set_message(output::clean(&p.message));
            }
        }
    });
    Some((spinner, task))
}

fn print_example(x: &ExampleInspection, colour: bool) {
    println!(
        "example {} (line {}) of {}, {} with {}",
        x.example.index,
        x.example.line,
        count(x.examples),
        output::clean(&x.format),
        output::clean(&x.base_model)
    );
    println!(
        "{}",
        render_tokens(&x.tokens, x.cut, x.summary.max_seq_length, colour)
    );
    let s = &x.summary;
    println!(
        "{} tokens, {} trained ({:.0}%), {}",
        count(s.tokens),
        count(s.trained_tokens),
        s.trained_share * 100.0,
        if s.truncated {
            format!(
                "truncated at max_seq_length {}: {} tokens lost",
                s.max_seq_length,
                count(s.tokens_lost)
            )
        } else {
            "not truncated".to_string()
        }
    );
    if !colour {
        println!("(trained tokens are inside ⟦ ⟧; special tokens inside ⟨ ⟩)");
    }
    print_warnings(&x.warnings);
}

/// The tokens as one text: trained runs styled (or bracketed), special tokens bracketed, the
/// cut marked where `cut` says.
pub(crate) fn render_tokens(
    tokens: &[InspectedToken],
    cut: Option<usize>,
    max_seq_length: u32,
    colour: bool,
) -> String {
    let mut out = String::new();
    let mut in_trained = false;
    for (i, t) in tokens.iter().enumerate() {
        if Some(i) == cut {
            if in_trained && !colour {
                out.push('⟧');
            }
            in_trained = false;
            out.push_str(&paint(
                &format!(
                    "\n✂ cut at max_seq_length {max_seq_length}: what follows is not trained\n"
                ),
                "1;31",
                colour,
            ));
        }
        let trained = t.trained && cut.is_none_or(|c| i < c);
        if !colour && trained != in_trained {
            out.push(if trained { '⟦' } else { '⟧' });
        }
        in_trained = trained;
        let text = visible(&t.text);
        let text = if t.special {
            format!("⟨{text}⟩")
        } else {
            text
        };
        let style = match (trained, t.special) {
            (true, true) => "1;32",
            (true, false) => "32",
            (false, true) => "2;35",
            (false, false) => "2",
        };
        out.push_str(&paint(&text, style, colour));
    }
    if in_trained && !colour {
        out.push('⟧');
    }
    out
}

/// A token's text with nothing that could act on a terminal (see
/// [`brightrun_engine::text::visible_token`]), a newline shown as `↵` and kept.
fn visible(text: &str) -> String {
    brightrun_engine::text::visible_token(text).replace('\n', "↵\n")
}

/// `text` in an SGR style, each line apart (so a line break never carries a colour), or as is.
fn paint(text: &str, sgr: &str, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    text.split('\n')
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("\x1b[{sgr}m{line}\x1b[0m")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_stats(s: &DatasetInspection) {
    let t = &s.stats;
    println!(
        "{} with {} ({}), max_seq_length {}",
        count(t.examples),
        output::clean(&s.base_model),
        output::clean(&s.format),
        t.max_seq_length
    );
    let share = |n: u64| {
        if t.tokens == 0 {
            0.0
        } else {
            n as f64 * 100.0 / t.tokens as f64
        }
    };
    println!("  tokens             {}", count(t.tokens));
    println!(
        "  trained tokens     {} ({:.0}%)",
        count(t.trained_tokens),
        share(t.trained_tokens)
    );
    println!("  longest            {}", count(t.longest));
    println!(
        "  over max length    {} examples, {} tokens lost",
        count(t.over_max_seq_length),
        count(t.tokens_lost)
    );
    println!(
        "  packing            {:.0}% of packed rows filled",
        t.packing_efficiency * 100.0
    );
    if t.skipped > 0 {
        println!(
            "  skipped            {} (see the warnings)",
            count(t.skipped)
        );
    }
    println!("  (estimates for this model and length now use these counts)");
    print_warnings(&s.warnings);
}

fn print_warnings(warnings: &[InspectionWarning]) {
    for w in warnings {
        let line = format!(
            "warning: {} ({})",
            output::clean(&w.message),
            output::clean(&w.code)
        );
        println!("{}", prose(&line, 9));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(text: &str, trained: bool, special: bool) -> InspectedToken {
        InspectedToken {
            id: 0,
            text: text.into(),
            trained,
            special,
        }
    }

    #[test]
    fn trained_runs_special_tokens_and_the_cut_are_visible_without_colour() {
        let tokens = [
            tok("<s>", false, true),
            tok("user: hi\n", false, false),
            tok("Hello", true, false),
            tok("</s>", true, true),
            tok("\x1b[31mred", false, false),
            tok("more", true, false),
        ];
        let text = render_tokens(&tokens, Some(5), 128, false);
        assert_eq!(
            text,
            "⟨<s>⟩user: hi↵\n⟦Hello⟨</s>⟩⟧·[31mred\n✂ cut at max_seq_length 128: what follows is not trained\nmore"
        );
        assert!(!text.contains('\x1b'), "no escape from the data");
    }

    #[test]
    fn colour_styles_each_line_apart() {
        let text = render_tokens(&[tok("a\nb", true, false)], None, 128, true);
        assert_eq!(text, "\x1b[32ma↵\x1b[0m\n\x1b[32mb\x1b[0m");
    }
}
