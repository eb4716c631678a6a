//! Streaming a `.json` file that holds one JSON array of examples (LLaMA-Factory's layout):
//! the array is cut into its elements as the bytes go by, each element is handed on with the
//! line it starts on, and no element is kept past the size cap.

/// What the splitter found.
pub(crate) enum Piece<'e> {
    /// One element's bytes and the 1-based line it starts on.
    Element { line: u64, bytes: &'e [u8] },
    /// An element longer than the cap (skipped), with its length.
    TooLong { line: u64, len: u64 },
    /// The array itself is malformed.
    Structure {
        line: u64,
        error: String,
        suggestion: &'static str,
    },
}

pub(crate) const ARRAY_SHAPE: &str =
    "a .json dataset must be one JSON array of example objects: [{…}, {…}, …]";

#[derive(Clone, Copy, PartialEq, Eq)]
enum St {
    /// Before the opening `[`.
    Open,
    /// After `[`: an element or `]`.
    First,
    /// After `,`: an element.
    Next,
    /// Inside an element.
    Elem,
    /// After the closing `]`: only whitespace may follow.
    After,
    /// The structure is broken beyond repair: the rest is ignored.
    Dead,
}

pub(crate) struct ArraySplitter {
    st: St,
    depth: u32,
    in_str: bool,
    esc: bool,
    elem: Vec<u8>,
    elem_len: u64,
    elem_line: u64,
    /// 1-based line at position `counted` of the current chunk.
    line: u64,
    counted: usize,
    max: usize,
}

impl ArraySplitter {
    pub fn new(max: usize) -> Self {
        Self {
            st: St::Open,
            depth: 0,
            in_str: false,
            esc: false,
            elem: Vec::new(),
            elem_len: 0,
            elem_line: 0,
            line: 1,
            counted: 0,
            max,
        }
    }

    fn line_at(&mut self, data: &[u8], p: usize) -> u64 {
        if p > self.counted {
            self.line += memchr::memchr_iter(b'\n', &data[self.counted..p]).count() as u64;
            self.counted = p;
        }
        self.line
    }

    fn keep(&mut self, seg: &[u8]) {
        self.elem_len += seg.len() as u64;
        if self.elem_len <= self.max as u64 {
            self.elem.extend_from_slice(seg);
        } else {
            self.elem = Vec::new();
        }
    }

    fn emit(&mut self, out: &mut dyn FnMut(Piece<'_>)) {
        if self.elem_len > self.max as u64 {
            out(Piece::TooLong {
                line: self.elem_line,
                len: self.elem_len,
            });
        } else {
            out(Piece::Element {
                line: self.elem_line,
                bytes: &self.elem,
            });
        }
        self.elem.clear();
        self.elem_len = 0;
    }

    /// Feeds the next chunk of the file.
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Piece<'_>)) {
        self.counted = 0;
        let mut i = 0;
        let mut seg = 0;
        while i < data.len() {
            if self.st == St::Elem {
                if self.esc {
                    self.esc = false;
                    i += 1;
                    continue;
                }
                if self.in_str {
                    match memchr::memchr2(b'"', b'\\', &data[i..]) {
                        None => i = data.len(),
                        Some(j) if data[i + j] == b'"' => {
                            self.in_str = false;
                            i += j + 1;
                        }
                        Some(j) => {
                            self.esc = true;
                            i += j + 1;
                        }
                    }
                    continue;
                }
                let b = data[i];
                let ends = match b {
                    b'"' => {
                        self.in_str = true;
                        false
                    }
                    b'{' | b'[' => {
                        self.depth += 1;
                        false
                    }
                    b'}' | b']' if self.depth > 0 => {
                        self.depth -= 1;
                        false
                    }
                    b']' | b',' => self.depth == 0,
                    _ => false,
                };
                if ends {
                    self.keep(&data[seg..i]);
                    self.emit(out);
                    self.st = if b == b']' { St::After } else { St::Next };
                }
                i += 1;
                continue;
            }
            let b = data[i];
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
                continue;
            }
            match self.st {
                St::Open => {
                    if b == b'[' {
                        self.st = St::First;
                    } else {
                        let line = self.line_at(data, i);
                        out(Piece::Structure {
                            line,
                            error: "the file does not start with a JSON array".into(),
                            suggestion: ARRAY_SHAPE,
                        });
                        self.st = St::Dead;
                    }
                    i += 1;
                }
                St::First | St::Next if b == b']' => {
                    if self.st == St::Next {
                        let line = self.line_at(data, i);
                        out(Piece::Structure {
                            line,
                            error: "a trailing comma before the closing ] (not valid JSON)".into(),
                            suggestion: "remove the comma after the last example",
                        });
                    }
                    self.st = St::After;
                    i += 1;
                }
                St::Next if b == b',' => {
                    let line = self.line_at(data, i);
                    out(Piece::Structure {
                        line,
                        error: "an empty element (two commas in a row) in the JSON array".into(),
                        suggestion: "remove the extra comma",
                    });
                    i += 1;
                }
                St::First | St::Next => {
                    self.elem_line = self.line_at(data, i);
                    self.elem.clear();
                    self.elem_len = 0;
                    self.depth = 0;
                    self.in_str = false;
                    self.esc = false;
                    self.st = St::Elem;
                    seg = i;
                }
                St::After => {
                    let line = self.line_at(data, i);
                    out(Piece::Structure {
                        line,
                        error: "unexpected content after the closing ] of the JSON array".into(),
                        suggestion: ARRAY_SHAPE,
                    });
                    self.st = St::Dead;
                }
                St::Dead => break,
                St::Elem => unreachable!(),
            }
        }
        if self.st == St::Elem {
            self.keep(&data[seg..]);
        }
        self.line_at(data, data.len());
    }

    /// The end of the file.
    pub fn finish(&mut self, out: &mut dyn FnMut(Piece<'_>)) {
        let unclosed = matches!(self.st, St::First | St::Next | St::Elem | St::Open);
        if self.st == St::Elem {
            self.emit(out);
        }
        if unclosed {
            out(Piece::Structure {
                line: self.line,
                error: "the file ends before the JSON array is closed (no final ])".into(),
                suggestion: "the file may be cut short: upload it whole, or close the array with ]",
            });
        }
        self.st = St::Dead;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(data: &[u8], chunk: usize) -> Vec<String> {
        let mut s = ArraySplitter::new(64);
        let mut got = Vec::new();
        let mut sink = |p: Piece<'_>| {
            got.push(match p {
                Piece::Element { line, bytes } => {
                    format!("{line}:{}", String::from_utf8_lossy(bytes).trim())
                }
                Piece::TooLong { line, len } => format!("{line}:long {len}"),
                Piece::Structure { line, error, .. } => format!("{line}!{error}"),
            })
        };
        for c in data.chunks(chunk) {
            s.feed(c, &mut sink);
        }
        s.finish(&mut sink);
        got
    }

    #[test]
    fn splits_elements_with_lines() {
        let data = b"[\n  {\"a\": \"x,]\\\"\"},\n  {\"b\": [1, 2]}\n, 3]\n";
        for chunk in [1, 2, 3, 7, 100] {
            assert_eq!(
                split(data, chunk),
                vec!["2:{\"a\": \"x,]\\\"\"}", "3:{\"b\": [1, 2]}", "4:3"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn reports_structure_problems() {
        let got = split(b"[{\"a\":1},]", 4);
        assert_eq!(got.len(), 2);
        assert!(got[1].contains("trailing comma"));
        let got = split(b"[{\"a\":1}", 4);
        assert!(got.last().unwrap().contains("ends before"));
        let got = split(b"[{\"a\":1}] x", 4);
        assert!(got.last().unwrap().contains("after the closing"));
        let got = split(b"[]", 4);
        assert!(got.is_empty());
        let long = format!("[\"{}\", 1]", "z".repeat(100));
        assert_eq!(split(long.as_bytes(), 5), vec!["1:long 102", "1:1"]);
    }
}
