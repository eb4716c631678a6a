//! File-level verdicts on the shape of a file, from its first bytes: a file that is not JSONL
//! at all (plain text, CSV under another name), pretty-printed JSON objects spread over lines,
//! or a single JSON object in a `.json` file. Each gets one finding for the whole file instead
//! of one error per line.

use super::tape;

/// How many leading lines are looked at to tell that a file is not JSON at all.
const LINES_LOOKED_AT: usize = 5;

/// `(line, error, suggestion)` when the head of the file (`head`, after any BOM; `eof` when it
/// is the whole file) shows a shape mistake; `ext` is the lowercased file extension.
pub(crate) fn verdict(head: &[u8], eof: bool, ext: &str) -> Option<(u64, String, String)> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let first_line = 1 + memchr::memchr_iter(b'\n', &head[..start]).count() as u64;
    match head[start] {
        b'{' => objects(head, start, first_line, eof, ext),
        b'[' | b'"' => None,
        _ => not_json(head, first_line, eof, ext),
    }
}

/// The first lines do not start like JSON values: plain text, CSV, Markdown.
fn not_json(head: &[u8], first_line: u64, eof: bool, ext: &str) -> Option<(u64, String, String)> {
    let mut lines: Vec<&[u8]> = head
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .collect();
    if !eof && lines.len() > 1 {
        lines.pop(); // possibly cut short
    }
    lines.truncate(LINES_LOOKED_AT);
    let starts_like_json = |l: &&[u8]| {
        matches!(l[0], b'{' | b'[' | b'"' | b'-' | b'0'..=b'9')
            || l.starts_with(b"true")
            || l.starts_with(b"false")
            || l.starts_with(b"null")
    };
    // A line with an object in it is a broken JSONL line, better reported on its own.
    let holds_object = |l: &&[u8]| memchr::memmem::find(l, b"{\"").is_some();
    if lines.is_empty() || lines.iter().any(|l| starts_like_json(l) || holds_object(l)) {
        return None;
    }
    // Mostly bytes that are no UTF-8 (stray bytes, binary): not text; the line's own UTF-8
    // error says what they are. (Text in another encoding has a few, and is text.)
    let (chars, bad) =
        lines
            .iter()
            .flat_map(|l| l.utf8_chunks())
            .fold((0usize, 0usize), |(c, b), k| {
                (
                    c + k.valid().chars().count() + k.invalid().len(),
                    b + k.invalid().len(),
                )
            });
    if bad * 4 > chars {
        return None;
    }
    let commas = |l: &[u8]| l.iter().filter(|&&b| b == b',').count();
    let csv = lines.len() > 1
        && commas(lines[0]) > 0
        && lines.iter().all(|l| commas(l) == commas(lines[0]));
    let (what, suggestion) = if csv || matches!(ext, "csv" | "tsv") {
        (
            "CSV text".to_string(),
            "convert it to JSONL, one example per line, e.g. with pandas: `read_csv(f).to_json(out, orient=\"records\", lines=True)`, then name the columns as a supported format does".to_string(),
        )
    } else {
        (
            if ext.is_empty() { "plain text".to_string() } else { format!("plain text (.{ext})") },
            "for plain-text training write each document as a JSON line {\"text\": …}, e.g. `jq -R -c '{text: .}' in.txt > out.jsonl` (one document per line); for conversations use one of the chat formats".to_string(),
        )
    };
    Some((
        first_line,
        format!("the file is {what}, not JSONL: its first lines are not JSON"),
        suggestion,
    ))
}

/// The file starts with an object: fine when the object ends on its first line (JSONL), a
/// shape mistake when it spreads over lines (pretty-printed) or is the whole `.json` file.
fn objects(
    head: &[u8],
    start: usize,
    first_line: u64,
    eof: bool,
    ext: &str,
) -> Option<(u64, String, String)> {
    let line_end = memchr::memchr(b'\n', &head[start..]).map_or(head.len(), |p| start + p);
    let mut nodes = Vec::new();
    let mut arena = String::new();
    let one_line = match tape::parse(&head[start..line_end], &mut nodes, &mut arena) {
        Ok(()) => true,
        // The object goes on past the line: maybe pretty-printed.
        Err(e) if matches!(e.kind, tape::ErrorKind::Eof(_)) => false,
        // Broken on its own line: a per-line error says it best.
        Err(_) => return None,
    };
    if one_line && (ext != "json" || !eof) {
        return None;
    }
    let pretty_fix =
        "write one example per line (JSONL), e.g. `jq -c . in.json > out.jsonl`".to_string();
    match tape::parse_prefix(&head[start..], &mut nodes, &mut arena) {
        Ok(end) => {
            let rest = head[start + end..].trim_ascii();
            let lines = 1 + memchr::memchr_iter(b'\n', &head[start..start + end]).count();
            if rest.is_empty() && eof {
                let doc = tape::Doc { nodes: &nodes, arena: &arena };
                if one_line && super::formats::detect(&doc, 0).is_some() {
                    return None; // a one-example file, named .json
                }
                let list = doc
                    .entries(0)
                    .find(|&(_, v)| matches!(doc.nodes[v], tape::Node::Arr { len, .. } if len > 0) && doc.elements(v).next().is_some_and(|e| doc.is_obj(e)))
                    .map(|(k, _)| k.to_string());
                let (error, suggestion) = match list {
                    Some(k) => (
                        format!("the file is a single JSON object, with the examples in its list \"{k}\"; a dataset is JSONL (one example per line) or one JSON array of examples"),
                        format!("take the list out as JSONL, e.g. `jq -c '.{k}[]' in.json > out.jsonl`"),
                    ),
                    None => (
                        format!("the file is a single JSON object ({lines} lines), not a list of examples: a .json dataset is one JSON array [{{…}}, {{…}}], a .jsonl dataset one example per line"),
                        "for one example, write it on one line in a .jsonl file; for several, wrap them in [ ] or write one per line".into(),
                    ),
                };
                return Some((first_line, error, suggestion));
            }
            if one_line {
                return None;
            }
            if rest.starts_with(b"{") || rest.starts_with(b",") || (rest.is_empty() && !eof) {
                return Some((
                    first_line,
                    format!("the file is pretty-printed JSON: the first example spreads over lines {first_line}–{}, but JSONL needs each example complete on one line", first_line + lines as u64 - 1),
                    pretty_fix,
                ));
            }
            None
        }
        Err(e) if matches!(e.kind, tape::ErrorKind::Eof(_)) && !one_line && !eof => Some((
            first_line,
            "the file looks like pretty-printed JSON: its first example does not end on its first line (nor in the first 256 KB)".to_string(),
            pretty_fix,
        )),
        Err(_) => None,
    }
}
