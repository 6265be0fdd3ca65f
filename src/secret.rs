//! Values that must never be printed: private keys, passphrases, JWTs, tokens, proxy passwords.
//!
//! Two guards. [`Secret`] wraps each value, so a leak needs a deliberate `expose()`. And every
//! value is registered, once, in a process-wide registry the moment netcheck holds it
//! ([`Secret::new`] registers; [`register`] for a value derived from one, such as a Basic header):
//! [`scrub`] replaces every registered value in a text with `***`. The output boundary
//! ([`crate::output`]) scrubs everything that leaves the process, so a server that echoes the
//! `Authorization` header in its error page cannot get the JWT or the token printed.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde::{Serialize, Serializer};

/// What a registered value is replaced with.
pub const MASK: &str = "***";

/// Values shorter than this are not registered: masking every `ab` in a report would make it
/// unreadable, and a value that short guards nothing (a Basic header built from it is long enough
/// and is registered on its own).
pub const MIN_LEN: usize = 4;

/// Holds a secret value; `Debug`, `Display` and `Serialize` print `***`, so a leak needs a
/// deliberate call to [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T: AsRef<str>> Secret<T> {
    /// Wraps a secret value and registers it, so no output can carry it.
    pub fn new(value: T) -> Self {
        register(value.as_ref());
        Self(value)
    }
}

impl<T> Secret<T> {
    /// Gives access to the secret; call sites are easy to audit with grep.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsRef<str>> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

/// The registered values and a matcher built from them (when first needed after a registration:
/// a handful of values per run, against many scrubbed lines).
#[derive(Default)]
struct Registry {
    values: Vec<String>,
    matcher: Option<Arc<AhoCorasick>>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    values: Vec::new(),
    matcher: None,
});

/// Registers a secret value: from now on [`scrub`] masks it, and the forms it takes inside the
/// reports too — JSON-escaped, XML-escaped, HTML-escaped, and each line of a multi-line value (a PEM key's
/// base64 lines), so neither escaping nor a line break lets a part of it through.
pub fn register(value: &str) {
    let mut forms: Vec<String> = Vec::new();
    let mut add = |form: &str| {
        let form = form.trim();
        if form.chars().count() >= MIN_LEN && !forms.iter().any(|f| f == form) {
            forms.push(form.to_owned());
        }
    };
    for text in std::iter::once(value).chain(value.lines()) {
        // A PEM armour line (`-----BEGIN …-----`) is no secret.
        if text.trim_start().starts_with("-----") && text.lines().count() == 1 {
            continue;
        }
        let json = json_escaped(text);
        add(text);
        add(&xml_escaped(text));
        add(&json);
        add(&xml_escaped(&json));
        // The HTML report's escaping (maud's: `'` stays as it is).
        add(&html_escaped(text));
        add(&html_escaped(&json));
    }
    if forms.is_empty() {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    for form in forms {
        if !registry.values.contains(&form) {
            registry.values.push(form);
            // Rebuilt at the next scrub: registering stays cheap (the emulator registers the keys
            // it writes while its port is already open).
            registry.matcher = None;
        }
    }
}

/// `text` with every registered secret replaced by `***`.
#[must_use]
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Some(matcher) = matcher() else {
        return Cow::Borrowed(text);
    };
    if matcher.is_match(text) {
        let masks = vec![MASK; matcher.patterns_len()];
        Cow::Owned(matcher.replace_all(text, &masks))
    } else {
        Cow::Borrowed(text)
    }
}

/// The matcher of every registered value, built once after the last registration.
fn matcher() -> Option<Arc<AhoCorasick>> {
    if let Some(m) = &REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .matcher
    {
        return Some(m.clone());
    }
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if registry.values.is_empty() {
        return None;
    }
    if registry.matcher.is_none() {
        // Leftmost-longest: a whole PEM is masked as one, not line by line around it. A
        // contiguous NFA builds fast and searches a report's lines fast enough.
        registry.matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&registry.values)
            .ok()
            .map(Arc::new);
    }
    registry.matcher.clone()
}

fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

/// As XML writers escape text and attribute values.
fn html_escaped(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    let _ = maud::Escaper::new(&mut out).write_str(text);
    out
}

fn xml_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Secret, register, scrub};

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
    }

    #[test]
    fn registered_values_are_scrubbed_in_every_form() {
        let _ = Secret::new("pa\"ss<&>word".to_owned());
        assert_eq!(scrub("say pa\"ss<&>word!"), "say ***!");
        assert_eq!(scrub(r#"{"m":"pa\"ss<&>word"}"#), r#"{"m":"***"}"#);
        assert_eq!(scrub("pa&quot;ss&lt;&amp;&gt;word"), "***");
        // As the HTML report escapes it (an apostrophe stays as it is).
        let _ = Secret::new("it's<secret>".to_owned());
        assert_eq!(scrub("<td>it's&lt;secret&gt;</td>"), "<td>***</td>");
        assert_eq!(scrub("nothing here"), "nothing here");
    }

    #[test]
    fn each_line_of_a_pem_is_a_secret_of_its_own() {
        let pem = "-----BEGIN PRIVATE KEY-----\nQUJDREVGR0hJSktMTU5PUA\nUVJTVFVWV1hZWmFi\n-----END PRIVATE KEY-----\n";
        register(pem);
        assert_eq!(scrub(pem), "***\n");
        assert_eq!(scrub("x UVJTVFVWV1hZWmFi y"), "x *** y");
        assert_eq!(
            scrub("-----BEGIN PRIVATE KEY-----"),
            "-----BEGIN PRIVATE KEY-----"
        );
    }

    #[test]
    fn short_values_are_not_registered() {
        register("ab");
        assert_eq!(scrub("abc ab"), "abc ab");
    }
}
