//! Values that must never be printed: private keys, passphrases, JWTs, tokens, proxy passwords.
//!
//! Two guards. [`Secret`] wraps each value, so a leak needs a deliberate `expose()`. And every
//! value is registered, once, in a process-wide registry the moment netcheck holds it
//! ([`Secret::new`] registers; [`register`] for a value derived from one, such as a Basic header):
//! [`scrub`] replaces every registered value in a text with `***`. The output boundary
//! ([`crate::output`]) scrubs everything that leaves the process, so a server that echoes the
//! `Authorization` header in its error page cannot get the JWT or the token printed.
//!
//! A long-running caller (`netcheck serve`) holds each run in a [`Scope`]: what is registered
//! while a scope is open is forgotten once every scope open at that moment has closed, so a
//! process that runs forever does not keep every JWT and token it ever made. Outside any scope a
//! value is kept for the life of the process, as a one-shot run wants.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde::{Serialize, Serializer};

/// What a registered value is replaced with.
pub const MASK: &str = "***";

/// Forms shorter than this are masked only where they stand as a whole token: bounded on each
/// side by a character that is not alphanumeric (`:`, `@`, `/`, space, quote, …) or by the end of
/// the text. A three-letter proxy password is still a password (`http://user:abc@proxy` becomes
/// `http://user:***@proxy`), but masking every `abc` inside `abcdef` or `cabal` would make a
/// report unreadable and tell a reader where the password's letters are. (The word itself,
/// standing alone, is masked: it cannot be told from the password.) Longer forms are masked
/// wherever they occur. Only a value of one line is registered this short: the lines of a PEM key
/// or another multi-line value are masked as a whole and line by line from this length on.
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
struct Registry {
    values: Vec<Registered>,
    matcher: Option<Arc<Matcher>>,
    /// Stamps scope openings and scoped registrations, in order.
    clock: u64,
    /// The opening stamps of the scopes still open, with how many opened at each.
    open: BTreeMap<u64, usize>,
}

/// One registered form, and the stamp of its last registration inside a scope (`None`: kept for
/// the life of the process).
struct Registered {
    form: String,
    scoped: Option<u64>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry::new());

fn registry() -> std::sync::RwLockWriteGuard<'static, Registry> {
    REGISTRY.write().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    const fn new() -> Self {
        Self {
            values: Vec::new(),
            matcher: None,
            clock: 0,
            open: BTreeMap::new(),
        }
    }

    /// Opens a scope; returns its stamp.
    fn open(&mut self) -> u64 {
        self.clock += 1;
        *self.open.entry(self.clock).or_default() += 1;
        self.clock
    }

    /// Closes the scope opened at `opened`, and forgets what no open scope holds any more.
    fn close(&mut self, opened: u64) {
        if let Some(n) = self.open.get_mut(&opened) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&opened);
            }
        }
        // A value stamped `s` may belong to any scope open at `s`: it stays while one of them,
        // i.e. a scope opened before `s`, is still open.
        let oldest = self.open.keys().next().copied();
        let before = self.values.len();
        self.values
            .retain(|v| v.scoped.is_none_or(|s| oldest.is_some_and(|o| o < s)));
        if self.values.len() != before {
            self.matcher = None;
        }
    }

    /// Adds `forms`, stamped when a scope is open.
    fn add(&mut self, forms: Vec<String>) {
        let scoped = if self.open.is_empty() {
            None
        } else {
            self.clock += 1;
            Some(self.clock)
        };
        for form in forms {
            if let Some(known) = self.values.iter_mut().find(|v| v.form == form) {
                // Kept as long as the longer of the two registrations wants it.
                known.scoped = known.scoped.and(scoped);
            } else {
                self.values.push(Registered { form, scoped });
                // Rebuilt at the next scrub: registering stays cheap (the emulator registers the
                // keys it writes while its port is already open).
                self.matcher = None;
            }
        }
    }
}

/// One run's hold on the values registered while it is open (see the module doc). Values
/// registered during a scope stay masked until it, and every scope open when they were
/// registered, has been dropped: keep it alive until the run's output has been written.
#[must_use = "the scope ends when dropped"]
pub struct Scope {
    opened: u64,
}

impl Scope {
    /// Opens a scope.
    pub fn enter() -> Self {
        Self {
            opened: registry().open(),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        registry().close(self.opened);
    }
}

/// Registers a secret value: from now on [`scrub`] masks it, and the forms it takes inside the
/// reports too — JSON-escaped, XML-escaped, HTML-escaped, and each line of a multi-line value (a PEM key's
/// base64 lines), so neither escaping nor a line break lets a part of it through. A value of one
/// line shorter than [`MIN_LEN`] is masked as a whole token only.
pub fn register(value: &str) {
    let one_line = value.lines().count() <= 1;
    let mut forms: Vec<String> = Vec::new();
    let mut add = |form: &str| {
        let form = form.trim();
        let len = form.chars().count();
        let long_enough = len >= MIN_LEN || (one_line && len > 0);
        if long_enough && !forms.iter().any(|f| f == form) {
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
    registry().add(forms);
}

/// `text` with every registered secret replaced by `***` (a short one only as a whole token, see
/// [`MIN_LEN`]).
#[must_use]
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Some(matcher) = matcher() else {
        return Cow::Borrowed(text);
    };
    let mut text = Cow::Borrowed(text);
    // The long forms first: a short secret inside a long one must not break the long one's match.
    if let Some(anywhere) = matcher.anywhere.as_ref().filter(|m| m.is_match(&*text)) {
        let masks = vec![MASK; anywhere.patterns_len()];
        text = Cow::Owned(anywhere.replace_all(&text, &masks));
    }
    for token in &matcher.tokens {
        if let Some(masked) = mask_token(&text, token) {
            text = Cow::Owned(masked);
        }
    }
    text
}

/// `text` with every whole-token occurrence of `token` masked, or `None` when there is none.
fn mask_token(text: &str, token: &str) -> Option<String> {
    let alone = |c: Option<char>| !c.is_some_and(char::is_alphanumeric);
    let mut out = String::new();
    let mut done = 0;
    for (at, _) in text.match_indices(token) {
        let end = at + token.len();
        if at >= done && alone(text[..at].chars().next_back()) && alone(text[end..].chars().next())
        {
            out.push_str(&text[done..at]);
            out.push_str(MASK);
            done = end;
        }
    }
    (done > 0).then(|| out + &text[done..])
}

/// What [`scrub`] looks for: the forms masked wherever they occur, and the short ones masked as
/// whole tokens (longest first, so `abc` goes before an `ab` in it could).
struct Matcher {
    anywhere: Option<AhoCorasick>,
    tokens: Vec<String>,
}

impl Matcher {
    fn new(forms: &[Registered]) -> Self {
        let (long, mut tokens): (Vec<String>, Vec<String>) = forms
            .iter()
            .map(|v| v.form.clone())
            .partition(|f| f.chars().count() >= MIN_LEN);
        tokens.sort_by_key(|t| std::cmp::Reverse(t.len()));
        // Leftmost-longest: a whole PEM is masked as one, not line by line around it. A
        // contiguous NFA builds fast and searches a report's lines fast enough.
        let anywhere = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&long)
            .ok()
            .filter(|_| !long.is_empty());
        Self { anywhere, tokens }
    }
}

/// The matcher of every registered value, built once after the last registration.
fn matcher() -> Option<Arc<Matcher>> {
    if let Some(m) = &REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .matcher
    {
        return Some(m.clone());
    }
    let mut registry = registry();
    if registry.values.is_empty() {
        return None;
    }
    if registry.matcher.is_none() {
        registry.matcher = Some(Arc::new(Matcher::new(&registry.values)));
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
    use super::{Registry, Secret, register, scrub};

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

    /// The forms `registry` holds, sorted.
    fn held(registry: &Registry) -> Vec<&str> {
        let mut forms: Vec<&str> = registry.values.iter().map(|v| v.form.as_str()).collect();
        forms.sort_unstable();
        forms
    }

    // A registry of their own: the process-wide one is shared with tests running at the same time.
    #[test]
    fn a_scope_forgets_its_values_once_every_scope_it_overlapped_has_closed() {
        let mut registry = Registry::new();
        let outer = registry.open();
        registry.add(vec!["outer".into()]);
        let inner = registry.open();
        registry.add(vec!["inner".into()]);
        registry.close(outer);
        // `inner` was registered while `outer` was open, but `inner` is open still.
        assert_eq!(held(&registry), ["inner"]);
        registry.close(inner);
        assert!(held(&registry).is_empty());
    }

    #[test]
    fn a_value_registered_outside_every_scope_outlives_them() {
        let mut registry = Registry::new();
        registry.add(vec!["process-wide".into()]);
        let scope = registry.open();
        registry.add(vec!["process-wide".into(), "run".into()]);
        registry.close(scope);
        assert_eq!(held(&registry), ["process-wide"]);
    }

    #[test]
    fn a_value_registered_again_in_a_later_scope_lives_as_long_as_that_one() {
        let mut registry = Registry::new();
        let first = registry.open();
        registry.add(vec!["key".into()]);
        let second = registry.open();
        registry.add(vec!["key".into()]);
        registry.close(first);
        assert_eq!(held(&registry), ["key"], "the second run registered it too");
        registry.close(second);
        assert!(held(&registry).is_empty());
    }

    // "owl" is this test's own: the registry is process-wide, and no other test writes the word.
    #[test]
    fn a_short_password_is_masked_where_it_stands_alone() {
        let _ = Secret::new("owl".to_owned());
        assert_eq!(
            scrub("CONNECT refused for http://netcheck:owl@proxy:3128"),
            "CONNECT refused for http://netcheck:***@proxy:3128"
        );
        assert_eq!(scrub("owl"), "***");
        assert_eq!(scrub("\"owl\", 'owl'"), "\"***\", '***'");
    }

    #[test]
    fn a_short_password_inside_a_word_is_left_alone() {
        let _ = Secret::new("owl".to_owned());
        let words = "a bowl of owls howled at the fowl; owlé 9owl";
        assert_eq!(scrub(words), words);
    }

    #[test]
    fn a_long_secret_holding_a_short_one_is_masked_whole() {
        let _ = Secret::new("owl".to_owned());
        let _ = Secret::new("snowl-owl-9".to_owned());
        assert_eq!(scrub("x snowl-owl-9 y"), "x *** y");
    }

    #[test]
    fn short_lines_of_a_multi_line_value_are_not_tokens_of_their_own() {
        register("-----BEGIN X-----\nQUJDREVGR0hJSktMTU5PUA\nw=\n-----END X-----");
        assert_eq!(scrub("a w= b"), "a w= b");
    }
}
