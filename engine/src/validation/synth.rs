//! A deterministic generator of realistic OpenAI-chat JSONL, for benchmarks and tests: varied
//! lengths (a long tail), an optional system prompt, one to five exchanges, prose with
//! punctuation, code blocks with quotes, backslashes and tabs, non-ASCII text (some lines with
//! `\uXXXX` escapes, as Python's `json.dumps` writes them) and about 1% duplicate lines.

use serde::Serialize;
use std::io::{self, Write};

/// SplitMix64: small, fast, good enough for test data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Log-uniform in `lo..=hi`: many short values, a long tail.
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
        (a + (b - a) * u).exp().round().clamp(lo as f64, hi as f64) as u64
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "be",
    "on",
    "not",
    "this",
    "but",
    "by",
    "from",
    "or",
    "have",
    "an",
    "they",
    "which",
    "you",
    "were",
    "her",
    "all",
    "she",
    "there",
    "would",
    "their",
    "we",
    "him",
    "been",
    "has",
    "when",
    "who",
    "will",
    "more",
    "no",
    "if",
    "out",
    "so",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "can",
    "only",
    "other",
    "new",
    "some",
    "could",
    "time",
    "these",
    "two",
    "may",
    "then",
    "do",
    "first",
    "any",
    "my",
    "now",
    "such",
    "like",
    "our",
    "over",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "great",
    "old",
    "year",
    "off",
    "come",
    "since",
    "against",
    "go",
    "came",
    "right",
    "used",
    "take",
    "three",
    "model",
    "training",
    "data",
    "learning",
    "rate",
    "batch",
    "gradient",
    "function",
    "value",
    "result",
    "example",
    "system",
    "question",
    "answer",
    "because",
    "however",
    "therefore",
    "specifically",
    "configuration",
    "performance",
    "customer",
    "account",
    "invoice",
    "schedule",
    "recipe",
    "temperature",
    "minutes",
    "kubernetes",
    "database",
    "request",
    "response",
    "server",
    "latency",
    "memory",
    "thread",
    "pointer",
];

const FOREIGN: &[&str] = &[
    "café",
    "naïve",
    "Zürich",
    "façade",
    "résumé",
    "señor",
    "über",
    "smørrebrød",
    "東京",
    "データ",
    "学習",
    "привет",
    "мир",
    "γειά",
    "שלום",
    "مرحبا",
    "नमस्ते",
    "😀",
    "🚀",
    "—",
    "“quoted”",
    "€42",
    "½",
    "…",
];

const SYSTEM_PROMPTS: &[&str] = &[
    "You are a helpful assistant.",
    "You are a concise assistant. Answer in at most three sentences.",
    "You are a senior support engineer for a cloud hosting company. Be precise, friendly and \
     cite the relevant documentation section when you can.",
    "You are a cooking assistant. Give quantities in metric units and mention allergens.",
    "You are a coding tutor. Explain the reasoning step by step and show short code examples.",
    "Tu es un assistant qui répond en français, poliment et avec précision.",
    "You are an assistant that answers questions about invoices and billing. Never reveal \
     internal account identifiers.",
    "You translate English into German. Keep the tone of the original.",
];

const CODE: &[&str] = &[
    "def train(model, data, lr=5e-5):\n\tfor batch in data:\n\t\tloss = model(batch)\n\t\tloss.backward()\n\treturn \"done\"\n",
    "fn main() {\n    let path = \"C:\\\\Users\\\\data.jsonl\";\n    println!(\"{}\", path);\n}\n",
    "SELECT id, name FROM users WHERE email LIKE '%@example.com' AND created_at > '2024-01-01';\n",
    "const re = /\\d+\\.\\d+/g;\nconsole.log(\"version\".match(re));\n",
    "{\n  \"learning_rate\": 0.0001,\n  \"batch_size\": 8,\n  \"note\": \"quoted \\\"value\\\"\"\n}\n",
];

/// Generates lines of OpenAI chat JSONL.
pub struct Synth {
    rng: Rng,
    recent: Vec<String>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: String,
}

#[derive(Serialize)]
struct Example<'a> {
    messages: Vec<Message<'a>>,
}

impl Synth {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            recent: Vec::new(),
        }
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Text of about `words` words: sentences, paragraphs, sometimes a list or code.
    pub fn text(&mut self, words: u64) -> String {
        let mut s = String::with_capacity(words as usize * 7);
        let mut sentence = 0;
        for i in 0..words {
            if sentence == 0 {
                if i > 0 {
                    match self.rng.below(12) {
                        0 => s.push_str("\n\n"),
                        1 => s.push_str("\n- "),
                        _ => s.push(' '),
                    }
                }
                let w = self.word();
                let mut c = w.chars();
                if let Some(f) = c.next() {
                    s.extend(f.to_uppercase());
                    s.push_str(c.as_str());
                }
            } else {
                s.push(' ');
                let w = self.word();
                s.push_str(w);
            }
            sentence += 1;
            if sentence > 4 && self.rng.chance(0.15) {
                s.push_str(self.rng.pick(&[".", ".", ".", "?", "!", ";", ":"]));
                sentence = 0;
            } else if self.rng.chance(0.06) {
                s.push(',');
            }
        }
        if sentence > 0 {
            s.push('.');
        }
        s
    }

    fn word(&mut self) -> &'static str {
        if self.rng.chance(0.02) {
            self.rng.pick(FOREIGN)
        } else {
            self.rng.pick(WORDS)
        }
    }

    /// One example object (not yet serialised).
    fn example(&mut self, max_pairs: u64, scale: u64) -> Example<'static> {
        let mut messages = Vec::new();
        if self.rng.chance(0.5) {
            messages.push(Message {
                role: "system",
                content: self.rng.pick(SYSTEM_PROMPTS).to_string(),
            });
        }
        let pairs = self.rng.log_uniform(1, max_pairs);
        for _ in 0..pairs {
            let words = self.rng.log_uniform(3, 120 * scale);
            let content = self.text(words);
            messages.push(Message {
                role: "user",
                content,
            });
            let words = self.rng.log_uniform(10, 600 * scale);
            let mut content = self.text(words);
            if self.rng.chance(0.15) {
                content.push_str("\n\n```\n");
                content.push_str(self.rng.pick(CODE));
                content.push_str("```\n");
            }
            messages.push(Message {
                role: "assistant",
                content,
            });
        }
        Example { messages }
    }

    /// One JSONL line (no `\n`) of a realistic size.
    pub fn line(&mut self) -> String {
        self.make_line(5, 1)
    }

    /// A short line (one or two exchanges, a few words), for tests.
    pub fn short_line(&mut self) -> String {
        let ex = self.example(2, 1);
        let ex = Example {
            messages: ex
                .messages
                .into_iter()
                .map(|m| Message {
                    role: m.role,
                    content: m.content.chars().take(80).collect(),
                })
                .collect(),
        };
        serde_json::to_string(&ex).expect("serialisable")
    }

    fn make_line(&mut self, max_pairs: u64, scale: u64) -> String {
        if !self.recent.is_empty() && self.rng.chance(0.01) {
            let i = self.rng.below(self.recent.len() as u64) as usize;
            return self.recent[i].clone();
        }
        let ex = self.example(max_pairs, scale.max(1));
        let mut line = serde_json::to_string(&ex).expect("serialisable");
        if self.rng.chance(0.1) {
            line = ascii_escaped(&line);
        }
        if self.recent.len() < 64 {
            self.recent.push(line.clone());
        } else {
            let i = self.rng.below(64) as usize;
            self.recent[i] = line.clone();
        }
        line
    }
}

/// Writes non-ASCII characters as `\uXXXX` escapes (only valid on JSON text, where non-ASCII
/// can only occur inside strings).
fn ascii_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", u));
            }
        }
    }
    out
}

/// Writes at least `target_bytes` of OpenAI-chat JSONL; returns the bytes written.
pub fn write_openai_chat<W: Write>(mut w: W, target_bytes: u64, seed: u64) -> io::Result<u64> {
    let mut s = Synth::new(seed);
    let mut written = 0u64;
    while written < target_bytes {
        let line = s.line();
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
        written += line.len() as u64 + 1;
    }
    w.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_json_and_deterministic() {
        let mut a = Synth::new(1);
        let mut b = Synth::new(1);
        for _ in 0..200 {
            let l = a.line();
            assert_eq!(l, b.line());
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert!(v["messages"].is_array());
            let s = Synth::new(3).short_line();
            serde_json::from_str::<serde_json::Value>(&s).unwrap();
        }
    }
}
