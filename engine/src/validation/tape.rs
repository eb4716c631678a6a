//! A JSON document parsed into a flat, reusable tape of borrowed nodes.
//!
//! The parser is strict RFC 8259 JSON (what Python's `json.loads` accepts, less `NaN` and
//! `Infinity`, and lone surrogates). The text is first checked as UTF-8 with SIMD
//! (simdutf8), so the parser itself only looks for quotes, backslashes and control bytes.
//! It keeps only what the validator needs: strings are borrowed from the line when they hold
//! no escape and decoded into one per-line arena when they do, numbers become `f64`, arrays
//! and objects become a header node followed by their children. Nothing is allocated per
//! value: the node vector and the arena are reused from one line to the next. Strings are
//! scanned 16 bytes at a time (SSE2 on x86-64, a plain loop elsewhere).

/// One node of the tape. An array's or object's `end` is the index just past its subtree; an
/// object's children alternate key (a string node) and value (a subtree).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Num(f64),
    /// A string with no escapes, borrowed from the input.
    Str(&'a str),
    /// A value string whose only escapes are the short ones (`\"`, `\\`, `\n`, `\r`, `\t`,
    /// `\b`, `\f`), kept raw with its decoded length. Its raw form is also its canonical form
    /// (see [`Text::canonical`]), so hashing it needs no decoding.
    Esc {
        raw: &'a str,
        len: u32,
    },
    /// A string with other escapes (or a key with escapes), decoded into the arena.
    Owned {
        start: u32,
        len: u32,
    },
    Arr {
        len: u32,
        end: u32,
    },
    Obj {
        end: u32,
    },
}

/// Why a text is not JSON, and where (a byte offset into it).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub at: usize,
    pub kind: ErrorKind,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The bytes at `at` are not UTF-8 (`Some(byte)`), or the text ends inside a character.
    Utf8(Option<u8>),
    /// The text ends before the value does.
    Eof(&'static str),
    /// Anything else, in serde_json's words.
    Syntax(&'static str),
}

/// How deep arrays and objects may nest: fewer than 128 levels, exactly serde_json's limit
/// (found by the differential test, `tests/validation_json_diff.rs`).
const MAX_DEPTH: u32 = 128;

/// Parses `text` (one whole JSON value, whitespace around it allowed) into `nodes`/`arena`.
pub(crate) fn parse<'a>(
    text: &'a [u8],
    nodes: &mut Vec<Node<'a>>,
    arena: &mut String,
) -> Result<(), JsonError> {
    nodes.clear();
    arena.clear();
    let s = match simdutf8::basic::from_utf8(text) {
        Ok(s) => s,
        Err(_) => {
            let e = simdutf8::compat::from_utf8(text).expect_err("invalid UTF-8");
            let at = e.valid_up_to();
            return Err(JsonError {
                at,
                kind: ErrorKind::Utf8(e.error_len().map(|_| text[at])),
            });
        }
    };
    let mut p = Parser::new(s, text, nodes, arena);
    p.ws();
    p.value()?;
    p.ws();
    if p.i < p.b.len() {
        return Err(p.syntax("trailing characters"));
    }
    Ok(())
}

/// Parses the first JSON value of `text` (whitespace before it allowed) and returns the
/// offset just past it; what follows is not looked at. Used to recognise a file of
/// pretty-printed objects from its first bytes.
pub(crate) fn parse_prefix<'a>(
    text: &'a [u8],
    nodes: &mut Vec<Node<'a>>,
    arena: &mut String,
) -> Result<usize, JsonError> {
    nodes.clear();
    arena.clear();
    // Only the valid UTF-8 prefix is parsed; a cut character at the end is an EOF.
    let valid = match simdutf8::compat::from_utf8(text) {
        Ok(_) => text.len(),
        Err(e) => e.valid_up_to(),
    };
    let text = &text[..valid];
    let s = std::str::from_utf8(text).unwrap_or_default();
    let mut p = Parser::new(s, text, nodes, arena);
    p.ws();
    p.value()?;
    Ok(p.i)
}

/// Gives back a vector's allocation with another lifetime parameter. The vector is emptied;
/// the in-place `collect` keeps the allocation, so this costs nothing.
pub(crate) fn recycle<'b>(mut v: Vec<Node<'_>>) -> Vec<Node<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!()).collect()
}

/// Whether the CPU has AVX2 (std caches the answer).
#[inline]
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

struct Parser<'a, 'n> {
    avx2: bool,
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: u32,
    nodes: &'n mut Vec<Node<'a>>,
    arena: &'n mut String,
}

/// The first index `>= i` holding `"`, `\\` or a control character (`< 0x20`), or
/// `b.len()`: 32 bytes at a time with AVX2 when the CPU has it (`avx2`, detected once per
/// parse), else 16 with SSE2 (the x86-64 baseline), else one by one.
#[inline(always)]
fn find_special(b: &[u8], i: usize, avx2: bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2 {
            // Most strings are short (keys, roles): look at the first 16 bytes inline before
            // calling the AVX2 loop (which cannot be inlined here).
            if let Some(found) = first_block_sse2(b, i) {
                return found;
            }
            // SAFETY: `avx2` is only true when the CPU supports AVX2.
            return unsafe { find_special_avx2(b, i + 16) };
        }
        find_special_sse2(b, i)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = avx2;
        find_special_tail(b, i)
    }
}

#[inline(always)]
fn find_special_tail(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let x = b[i];
        if x == b'"' || x == b'\\' || x < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn find_special_sse2(b: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16 bytes inside `b`
    // (`i + 16 <= b.len()`), unaligned loads are allowed.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let max_control = _mm_set1_epi8(0x1f);
        while i + 16 <= b.len() {
            let x = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
            // Unsigned x <= 0x1f.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(x, max_control), x);
            let hit = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                control,
            );
            let mask = _mm_movemask_epi8(hit) as u32;
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 16;
        }
    }
    find_special_tail(b, i)
}

/// The special byte in `b[i..i + 16]`, or `None` when there is none there (or fewer than 16
/// bytes are left: then the answer is exact too).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_block_sse2(b: &[u8], i: usize) -> Option<usize> {
    use std::arch::x86_64::*;
    if i + 16 > b.len() {
        return Some(find_special_tail(b, i));
    }
    // SAFETY: SSE2 is part of the x86-64 baseline; the load reads 16 bytes inside `b`.
    unsafe {
        let x = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
        let control = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
        let hit = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8)),
            ),
            control,
        );
        let mask = _mm_movemask_epi8(hit) as u32;
        (mask != 0).then(|| i + mask.trailing_zeros() as usize)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn find_special_avx2(b: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::*;
    // SAFETY: the caller checked AVX2; every load reads 32 bytes inside `b`.
    unsafe {
        let quote = _mm256_set1_epi8(b'"' as i8);
        let backslash = _mm256_set1_epi8(b'\\' as i8);
        let max_control = _mm256_set1_epi8(0x1f);
        while i + 32 <= b.len() {
            let x = _mm256_loadu_si256(b.as_ptr().add(i) as *const __m256i);
            let control = _mm256_cmpeq_epi8(_mm256_min_epu8(x, max_control), x);
            let hit = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(x, quote), _mm256_cmpeq_epi8(x, backslash)),
                control,
            );
            let mask = _mm256_movemask_epi8(hit) as u32;
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 32;
        }
    }
    find_special_sse2(b, i)
}

impl<'a, 'n> Parser<'a, 'n> {
    fn new(s: &'a str, b: &'a [u8], nodes: &'n mut Vec<Node<'a>>, arena: &'n mut String) -> Self {
        Parser {
            avx2: avx2(),
            s,
            b,
            i: 0,
            depth: 0,
            nodes,
            arena,
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn syntax(&self, msg: &'static str) -> JsonError {
        JsonError {
            at: self.i,
            kind: ErrorKind::Syntax(msg),
        }
    }

    fn eof(&self, msg: &'static str) -> JsonError {
        JsonError {
            at: self.b.len(),
            kind: ErrorKind::Eof(msg),
        }
    }

    fn value(&mut self) -> Result<(), JsonError> {
        let Some(&c) = self.b.get(self.i) else {
            return Err(self.eof("EOF while parsing a value"));
        };
        match c {
            b'"' => {
                let node = self.string(true)?;
                self.nodes.push(node);
            }
            b'{' => self.object()?,
            b'[' => self.array()?,
            b't' => self.literal(b"true", Node::Bool(true))?,
            b'f' => self.literal(b"false", Node::Bool(false))?,
            b'n' => self.literal(b"null", Node::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return Err(self.syntax("expected value")),
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8], node: Node<'a>) -> Result<(), JsonError> {
        let rest = &self.b[self.i..];
        if rest.starts_with(word) {
            self.i += word.len();
            self.nodes.push(node);
            Ok(())
        } else if word.starts_with(rest) {
            Err(self.eof("EOF while parsing a value"))
        } else {
            Err(self.syntax("expected value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.i;
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        match self.b.get(self.i) {
            None => return Err(self.eof("EOF while parsing a value")),
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(_) => return Err(self.syntax("invalid number")),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(match self.b.get(self.i) {
                    None => self.eof("EOF while parsing a value"),
                    Some(_) => self.syntax("invalid number"),
                });
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(match self.b.get(self.i) {
                    None => self.eof("EOF while parsing a value"),
                    Some(_) => self.syntax("invalid number"),
                });
            }
        }
        // The bytes are ASCII digits, signs, `.` and `e`: valid UTF-8 and a valid f64 literal.
        let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("0");
        self.nodes.push(Node::Num(text.parse().unwrap_or(0.0)));
        Ok(())
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.syntax("recursion limit exceeded"));
        }
        self.i += 1;
        Ok(())
    }

    fn array(&mut self) -> Result<(), JsonError> {
        self.enter()?;
        let at = self.nodes.len();
        self.nodes.push(Node::Arr { len: 0, end: 0 });
        let mut len = 0u32;
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
        } else {
            loop {
                self.value()?;
                len += 1;
                self.ws();
                match self.b.get(self.i) {
                    Some(b',') => {
                        self.i += 1;
                        self.ws();
                        if self.b.get(self.i) == Some(&b']') {
                            return Err(self.syntax("trailing comma"));
                        }
                    }
                    Some(b']') => {
                        self.i += 1;
                        break;
                    }
                    Some(_) => return Err(self.syntax("expected `,` or `]`")),
                    None => return Err(self.eof("EOF while parsing a list")),
                }
            }
        }
        self.depth -= 1;
        let end = self.nodes.len() as u32;
        self.nodes[at] = Node::Arr { len, end };
        Ok(())
    }

    fn object(&mut self) -> Result<(), JsonError> {
        self.enter()?;
        let at = self.nodes.len();
        self.nodes.push(Node::Obj { end: 0 });
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
        } else {
            loop {
                match self.b.get(self.i) {
                    Some(b'"') => {
                        let key = self.string(false)?;
                        self.nodes.push(key);
                    }
                    Some(_) => return Err(self.syntax("key must be a string")),
                    None => return Err(self.eof("EOF while parsing an object")),
                }
                self.ws();
                match self.b.get(self.i) {
                    Some(b':') => self.i += 1,
                    Some(_) => return Err(self.syntax("expected `:`")),
                    None => return Err(self.eof("EOF while parsing an object")),
                }
                self.ws();
                self.value()?;
                self.ws();
                match self.b.get(self.i) {
                    Some(b',') => {
                        self.i += 1;
                        self.ws();
                        if self.b.get(self.i) == Some(&b'}') {
                            return Err(self.syntax("trailing comma"));
                        }
                    }
                    Some(b'}') => {
                        self.i += 1;
                        break;
                    }
                    Some(_) => return Err(self.syntax("expected `,` or `}`")),
                    None => return Err(self.eof("EOF while parsing an object")),
                }
            }
        }
        self.depth -= 1;
        let end = self.nodes.len() as u32;
        self.nodes[at] = Node::Obj { end };
        Ok(())
    }

    /// The text of `b[from..to]`; both ends sit next to ASCII bytes (quotes, backslashes,
    /// escape letters), so they are character boundaries.
    #[inline(always)]
    fn text(&self, from: usize, to: usize) -> &'a str {
        &self.s[from..to]
    }

    /// A string starting at the `"` at `self.i`; leaves `self.i` after its closing quote.
    /// With `lazy`, short escapes are only counted ([`Node::Esc`]); otherwise, and for other
    /// escapes, the string is decoded into the arena.
    #[inline]
    fn string(&mut self, lazy: bool) -> Result<Node<'a>, JsonError> {
        self.i += 1;
        let start = self.i;
        let mut first_escape = None;
        let mut escapes = 0usize;
        loop {
            self.i = find_special(self.b, self.i, self.avx2);
            match self.b.get(self.i) {
                Some(b'"') => {
                    let s = self.text(start, self.i);
                    self.i += 1;
                    if escapes == 0 {
                        return Ok(Node::Str(s));
                    }
                    return Ok(Node::Esc {
                        raw: s,
                        len: (s.len() - escapes) as u32,
                    });
                }
                Some(b'\\') => {
                    let short = matches!(
                        self.b.get(self.i + 1),
                        Some(b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f')
                    );
                    if lazy && short {
                        first_escape.get_or_insert(self.i);
                        escapes += 1;
                        self.i += 2;
                    } else {
                        if let Some(at) = first_escape {
                            self.i = at;
                        }
                        return self.escaped(start);
                    }
                }
                Some(_) => {
                    return Err(self.syntax(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                None => return Err(self.eof("EOF while parsing a string")),
            }
        }
    }

    /// The rest of a string with escapes, decoded into the arena.
    fn escaped(&mut self, start: usize) -> Result<Node<'a>, JsonError> {
        let first = self.arena.len();
        let plain = self.text(start, self.i);
        self.arena.push_str(plain);
        loop {
            // At a backslash.
            let Some(&e) = self.b.get(self.i + 1) else {
                return Err(self.eof("EOF while parsing a string"));
            };
            let c = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    self.i += 2;
                    self.unicode_escape()?
                }
                _ => {
                    self.i += 1;
                    return Err(self.syntax("invalid escape"));
                }
            };
            if e != b'u' {
                self.i += 2;
            }
            self.arena.push(c);
            let from = self.i;
            self.i = find_special(self.b, self.i, self.avx2);
            let plain = self.text(from, self.i);
            self.arena.push_str(plain);
            match self.b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    let len = self.arena.len() - first;
                    return Ok(Node::Owned {
                        start: first as u32,
                        len: len as u32,
                    });
                }
                Some(b'\\') => {}
                Some(_) => {
                    return Err(self.syntax(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                None => return Err(self.eof("EOF while parsing a string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(h) = self.b.get(self.i..self.i + 4) else {
            if self.b[self.i..].iter().all(u8::is_ascii_hexdigit) {
                return Err(self.eof("EOF while parsing a string"));
            }
            return Err(self.syntax("invalid escape"));
        };
        let mut v = 0u32;
        for &d in h {
            let x = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.syntax("invalid escape")),
            };
            v = v * 16 + u32::from(x);
        }
        self.i += 4;
        Ok(v)
    }

    /// After `\\u`: the code point, joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(self.syntax("lone leading surrogate in hex escape"));
                }
                self.i += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(self.syntax("lone leading surrogate in hex escape"));
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.syntax("lone trailing surrogate in hex escape")),
            _ => hi,
        };
        char::from_u32(code).ok_or_else(|| self.syntax("invalid unicode code point"))
    }
}

/// A read-only view of a parsed tape.
#[derive(Clone, Copy)]
pub(crate) struct Doc<'t, 'a> {
    pub nodes: &'t [Node<'a>],
    pub arena: &'t str,
}

impl<'t, 'a: 't> Doc<'t, 'a> {
    /// The index just past the subtree at `i`.
    #[inline]
    pub fn skip(&self, i: usize) -> usize {
        match self.nodes[i] {
            Node::Arr { end, .. } | Node::Obj { end } => end as usize,
            _ => i + 1,
        }
    }

    /// A string with no short escapes left undecoded: every key, and any value without
    /// escapes or decoded into the arena. Use [`Doc::text_at`] for values.
    #[inline]
    pub fn str_at(&self, i: usize) -> Option<&'t str> {
        match self.nodes[i] {
            Node::Str(s) => Some(s),
            Node::Owned { start, len } => {
                Some(&self.arena[start as usize..(start as usize + len as usize)])
            }
            _ => None,
        }
    }

    /// The string value at `i`, however it is stored.
    #[inline]
    pub fn text_at(&self, i: usize) -> Option<Text<'t>> {
        match self.nodes[i] {
            Node::Str(s) => Some(Text::Raw(s)),
            Node::Esc { raw, len } => Some(Text::Esc { raw, len }),
            Node::Owned { start, len } => Some(Text::Decoded(
                &self.arena[start as usize..(start as usize + len as usize)],
            )),
            _ => None,
        }
    }

    #[inline]
    pub fn is_obj(&self, i: usize) -> bool {
        matches!(self.nodes[i], Node::Obj { .. })
    }

    /// The `(key, value index)` pairs of the object at `i` (nothing when it is no object).
    #[inline]
    pub fn entries(&self, i: usize) -> Entries<'t, 'a> {
        let end = match self.nodes[i] {
            Node::Obj { end } => end as usize,
            _ => i + 1,
        };
        Entries {
            doc: *self,
            at: i + 1,
            end,
        }
    }

    /// The element indices of the array at `i` (nothing when it is no array).
    #[inline]
    pub fn elements(&self, i: usize) -> Elements<'t, 'a> {
        let end = match self.nodes[i] {
            Node::Arr { end, .. } => end as usize,
            _ => i + 1,
        };
        Elements {
            doc: *self,
            at: i + 1,
            end,
        }
    }

    /// The value of `key` in the object at `i` (the last one when the key repeats).
    pub fn get(&self, i: usize, key: &str) -> Option<usize> {
        let mut found = None;
        for (k, v) in self.entries(i) {
            if k == key {
                found = Some(v);
            }
        }
        found
    }

    /// "a string", "an array", … for messages.
    pub fn kind(&self, i: usize) -> &'static str {
        match self.nodes[i] {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Num(_) => "a number",
            Node::Str(_) | Node::Esc { .. } | Node::Owned { .. } => "a string",
            Node::Arr { .. } => "an array",
            Node::Obj { .. } => "an object",
        }
    }

    /// A short JSON rendering of a scalar for messages (`"bot"`, `0.5`, `true`, `null`).
    pub fn show(&self, i: usize) -> String {
        match self.nodes[i] {
            Node::Null => "null".into(),
            Node::Bool(b) => b.to_string(),
            Node::Num(n) => n.to_string(),
            Node::Str(_) | Node::Esc { .. } | Node::Owned { .. } => {
                let s = self.text_at(i).map(|t| t.decoded()).unwrap_or_default();
                let short: String = s.chars().take(40).collect();
                let more = if short.len() < s.len() { "…" } else { "" };
                format!("{:?}{more}", short)
            }
            Node::Arr { .. } => "an array".into(),
            Node::Obj { .. } => "an object".into(),
        }
    }
}

/// A string value as the validator sees it: its decoded text, its length, whether it is
/// blank, and its canonical JSON form (for hashing) — without decoding when it can.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Text<'t> {
    /// No escapes: the raw text is the text, and its canonical form.
    Raw(&'t str),
    /// Only short escapes: `raw` is the canonical form, `len` the decoded length.
    Esc { raw: &'t str, len: u32 },
    /// Decoded text, which may hold characters that JSON must escape.
    Decoded(&'t str),
}

impl<'t> Text<'t> {
    /// Length of the decoded text in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match *self {
            Text::Raw(s) | Text::Decoded(s) => s.len(),
            Text::Esc { len, .. } => len as usize,
        }
    }

    /// Whether the decoded text is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        match *self {
            Text::Raw(s) | Text::Decoded(s) => s.trim().is_empty(),
            Text::Esc { raw, .. } => {
                let mut chars = raw.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        // Of the short escapes, \n \r \t \f are whitespace.
                        if !matches!(chars.next(), Some('n' | 'r' | 't' | 'f')) {
                            return false;
                        }
                    } else if !c.is_whitespace() {
                        return false;
                    }
                }
                true
            }
        }
    }

    /// Whether the decoded text is `word` (a plain word that JSON never escapes).
    #[inline]
    pub fn is(&self, word: &str) -> bool {
        match *self {
            Text::Raw(s) | Text::Decoded(s) => s == word,
            Text::Esc { .. } => false,
        }
    }

    /// The decoded text.
    pub fn decoded(&self) -> std::borrow::Cow<'t, str> {
        match *self {
            Text::Raw(s) | Text::Decoded(s) => std::borrow::Cow::Borrowed(s),
            Text::Esc { raw, len } => {
                let mut out = String::with_capacity(len as usize);
                let mut chars = raw.chars();
                while let Some(c) = chars.next() {
                    if c != '\\' {
                        out.push(c);
                        continue;
                    }
                    out.push(match chars.next() {
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some(other) => other,
                        None => break,
                    });
                }
                std::borrow::Cow::Owned(out)
            }
        }
    }

    /// The canonical JSON form when it is the stored bytes (no work to do).
    #[inline]
    pub fn canonical_bytes(&self) -> Option<&'t [u8]> {
        match *self {
            Text::Raw(s) | Text::Esc { raw: s, .. } => Some(s.as_bytes()),
            Text::Decoded(_) => None,
        }
    }

    /// Appends the canonical JSON form of the text (the inside of a JSON string written
    /// with the short escapes where they exist, `\\u00XX` for other control characters, and
    /// everything else as is). Two texts are equal exactly when their canonical forms are.
    pub fn canonical(&self, out: &mut Vec<u8>) {
        let s = match *self {
            Text::Raw(s) | Text::Esc { raw: s, .. } => {
                out.extend_from_slice(s.as_bytes());
                return;
            }
            Text::Decoded(s) => s,
        };
        let b = s.as_bytes();
        let mut i = 0;
        loop {
            let j = find_special(b, i, avx2());
            out.extend_from_slice(&b[i..j]);
            let Some(&c) = b.get(j) else { return };
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                _ => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            }
            i = j + 1;
        }
    }
}

pub(crate) struct Entries<'t, 'a> {
    doc: Doc<'t, 'a>,
    at: usize,
    end: usize,
}

impl<'t, 'a: 't> Iterator for Entries<'t, 'a> {
    type Item = (&'t str, usize);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let key = self.doc.str_at(self.at).unwrap_or_default();
        let value = self.at + 1;
        self.at = self.doc.skip(value);
        Some((key, value))
    }
}

pub(crate) struct Elements<'t, 'a> {
    doc: Doc<'t, 'a>,
    at: usize,
    end: usize,
}

impl<'t, 'a: 't> Iterator for Elements<'t, 'a> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.at >= self.end {
            return None;
        }
        let i = self.at;
        self.at = self.doc.skip(i);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tape_round_trip() {
        let text = r#"{"a": [1, "x\ny", {"b": null}], "c": true, "d": "plain"}"#;
        let mut nodes = Vec::new();
        let mut arena = String::new();
        parse(text.as_bytes(), &mut nodes, &mut arena).unwrap();
        let doc = Doc {
            nodes: &nodes,
            arena: &arena,
        };
        let keys: Vec<_> = doc.entries(0).map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "c", "d"]);
        let a = doc.get(0, "a").unwrap();
        let els: Vec<_> = doc.elements(a).collect();
        assert_eq!(els.len(), 3);
        assert_eq!(doc.text_at(els[1]).unwrap().decoded(), "x\ny");
        assert_eq!(doc.str_at(els[1]), None);
        assert_eq!(doc.kind(els[2]), "an object");
        assert_eq!(doc.str_at(doc.get(0, "d").unwrap()), Some("plain"));
        assert_eq!(doc.kind(doc.get(0, "c").unwrap()), "a boolean");
        let nodes = recycle(nodes);
        assert!(nodes.is_empty());
    }

    /// Parses a JSON string value and returns its text view's facts.
    fn facts(json: &str) -> (String, usize, bool, Vec<u8>) {
        let mut nodes = Vec::new();
        let mut arena = String::new();
        parse(json.as_bytes(), &mut nodes, &mut arena).unwrap();
        let doc = Doc {
            nodes: &nodes,
            arena: &arena,
        };
        let t = doc.text_at(0).unwrap();
        let mut canon = Vec::new();
        t.canonical(&mut canon);
        if let Some(b) = t.canonical_bytes() {
            assert_eq!(b, &canon[..]);
        }
        (t.decoded().into_owned(), t.len(), t.is_blank(), canon)
    }

    #[test]
    fn every_encoding_of_a_text_has_the_same_canonical_form() {
        let groups: &[&[&str]] = &[
            &[r#""café""#, r#""caf\u00e9""#, r#""caf\u00E9""#],
            &[r#""a\nb\"c\\d/""#, r#""a\u000ab\u0022c\u005cd\/""#],
            &[r#""\t\u0001""#, r#""\u0009\u0001""#],
            &[r#""😀""#, r#""\ud83d\ude00""#],
            &[r#"" \n\t ""#, r#""\u0020\n\u0009 ""#],
        ];
        for group in groups {
            let first = facts(group[0]);
            for other in &group[1..] {
                assert_eq!(facts(other), first, "{other} vs {}", group[0]);
            }
        }
        assert!(facts(r#"" \n\t ""#).2);
        assert!(!facts(r#"" \b ""#).2);
        assert_eq!(facts(r#""a\nb""#).1, 3);
        let (text, len, _, _) = facts(r#""x\"y\\z\r\b\f""#);
        assert_eq!(text, "x\"y\\z\r\u{8}\u{c}");
        assert_eq!(len, text.len());
    }

    #[test]
    fn every_scanner_finds_the_same_byte() {
        let mut rng = super::super::synth::Rng::new(5);
        for _ in 0..2000 {
            let len = rng.below(200) as usize;
            let b: Vec<u8> = (0..len)
                .map(|_| match rng.below(40) {
                    0 => b'"',
                    1 => b'\\',
                    2 => rng.below(0x20) as u8,
                    3 => 0x80 + rng.below(0x80) as u8,
                    _ => b'a' + rng.below(26) as u8,
                })
                .collect();
            let start = if len == 0 {
                0
            } else {
                rng.below(len as u64) as usize
            };
            let want = find_special_tail(&b, start);
            assert_eq!(find_special(&b, start, false), want);
            assert_eq!(find_special(&b, start, avx2()), want);
        }
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        let mut nodes = Vec::new();
        let mut arena = String::new();
        assert!(parse(b"{} x", &mut nodes, &mut arena).is_err());
        assert!(parse(b"  {}  ", &mut nodes, &mut arena).is_ok());
    }
}
