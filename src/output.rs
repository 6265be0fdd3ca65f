//! The output boundary: every byte netcheck writes for people or machines — the table, the JSON
//! report, the `JUnit` file, the logs at any verbosity, the error line on stderr — passes through
//! one [`Sink`]. It masks every registered secret ([`crate::secret::scrub`]) and shows control
//! characters escaped (`\u{1b}`), so a server's text can neither leak a credential it echoed nor
//! drive the terminal (ESC, OSC, CR, C1) nor make the `JUnit` file invalid XML (XML 1.0 forbids
//! most control characters even as character references).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// What a [`Sink`] lets through besides text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain text: every control character but newline and tab is escaped, as `\u{1b}`.
    Plain,
    /// JSON: the same characters, in JSON's own escape (`\u009b`), since they can only stand
    /// inside a string (serde escapes C0 itself, but not DEL, C1 or the bidi overrides).
    Json,
    /// A colour terminal: SGR sequences (`ESC [ digits ; … m`, colour and weight only) pass so
    /// the table can colour its verdicts; every other control, and every other escape sequence
    /// (cursor moves, clearing, titles, OSC links), is escaped.
    Colour,
}

/// A writer that scrubs secrets and escapes control characters, a line at a time (a secret never
/// spans a line: multi-line ones are registered line by line). What is left of a line is written
/// on [`flush`](Write::flush) or drop.
pub struct Sink<W: Write> {
    inner: W,
    style: Style,
    pending: Vec<u8>,
}

impl<W: Write> Sink<W> {
    /// A plain-text sink.
    pub fn new(inner: W) -> Self {
        Self::styled(inner, Style::Plain)
    }

    /// A sink that lets `style` through.
    pub fn styled(inner: W, style: Style) -> Self {
        Self {
            inner,
            style,
            pending: Vec::new(),
        }
    }

    fn write_out(&mut self, upto: usize) -> io::Result<()> {
        let text = String::from_utf8_lossy(&self.pending[..upto]);
        let clean = clean(&text, self.style);
        self.inner.write_all(clean.as_bytes())?;
        self.pending.drain(..upto);
        Ok(())
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = self.pending.iter().rposition(|&b| b == b'\n') {
            self.write_out(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out(self.pending.len())?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for Sink<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `text` as it may leave the process: secrets masked, then control characters escaped.
#[must_use]
pub fn clean(text: &str, style: Style) -> Cow<'_, str> {
    let scrubbed = crate::secret::scrub(text);
    if !scrubbed.chars().any(needs_escape) {
        return scrubbed;
    }
    let mut out = String::with_capacity(scrubbed.len() + 16);
    let mut rest = scrubbed.as_ref();
    while let Some(c) = rest.chars().next() {
        if style == Style::Colour {
            if let Some(len) = sgr_len(rest) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if needs_escape(c) && style == Style::Json {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// Control characters (C0 but newline and tab, DEL, C1), the characters XML 1.0 forbids
/// outright, and the bidirectional overrides that reorder what a reader sees.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        | '\u{fffe}' | '\u{ffff}')
}

/// The length of an SGR sequence at the start of `text`, if one is there.
fn sgr_len(text: &str) -> Option<usize> {
    let params = text.strip_prefix("\u{1b}[")?;
    let n = params
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (params.as_bytes().get(n) == Some(&b'm')).then_some(2 + n + 1)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use test_case::test_case;

    use super::{Sink, Style, clean};

    #[test_case("plain\ttext\n", "plain\ttext\n"; "text, tab and newline pass")]
    #[test_case("\u{1b}]0;pwned\u{7}", "\\u{1b}]0;pwned\\u{7}"; "osc title")]
    #[test_case("a\rb", "a\\u{d}b"; "carriage return")]
    #[test_case("\u{9b}2J", "\\u{9b}2J"; "c1 csi")]
    #[test_case("\u{1b}[31mred", "\\u{1b}[31mred"; "sgr escaped in plain text")]
    #[test_case("x\u{202e}y\u{ffff}", "x\\u{202e}y\\u{ffff}"; "bidi override and non-character")]
    fn plain_text_escapes_controls(input: &str, want: &str) {
        assert_eq!(clean(input, Style::Plain), want);
    }

    #[test]
    fn json_gets_json_escapes() {
        let json = serde_json::to_string("a\u{1b}b\u{9b}c\u{202e}").unwrap();
        let clean = clean(&json, Style::Json);
        assert_eq!(clean, r#""a\u001bb\u009bc\u202e""#);
        assert_eq!(
            serde_json::from_str::<String>(&clean).unwrap(),
            "a\u{1b}b\u{9b}c\u{202e}"
        );
    }

    #[test]
    fn colour_lets_only_sgr_through() {
        assert_eq!(
            clean(
                "\u{1b}[1;32mPASS\u{1b}[0m \u{1b}[2J\u{1b}]8;;x\u{7}",
                Style::Colour
            ),
            "\u{1b}[1;32mPASS\u{1b}[0m \\u{1b}[2J\\u{1b}]8;;x\\u{7}"
        );
    }

    #[test]
    fn a_secret_split_across_writes_is_still_masked() {
        let _ = crate::secret::Secret::new("s3cr3t-token-value".to_owned());
        let mut out = Vec::new();
        {
            let mut sink = Sink::new(&mut out);
            sink.write_all(b"echo: s3cr3t-to").unwrap();
            sink.write_all(b"ken-value\nnext ").unwrap();
            sink.write_all(b"line").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "echo: ***\nnext line");
    }
}
