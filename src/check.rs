//! What a check is: an id (an interface), a title, its dependencies and one async function. The
//! checks declare themselves with this type; the registry lists them; the runner runs them.

use futures::future::BoxFuture;

use crate::context::Ctx;
use crate::outcome::Outcome;

/// A check's run function: takes the shared context, returns its outcome. Failures of the
/// network are outcomes; the function never panics on them and never prints.
pub type CheckFn = fn(Ctx) -> BoxFuture<'static, Outcome>;

/// One check: its id (an interface: JSON, `JUnit` and `--only/--skip` use it), a title, the ids
/// it depends on, and its run function.
pub struct CheckSpec {
    pub id: &'static str,
    pub title: &'static str,
    /// Checks that must pass (or warn) first; if one fails, this one is skipped.
    pub deps: &'static [&'static str],
    /// Dependencies it does not wait for: it starts beside them, so their round trips and its
    /// own overlap, and its result stands only once they pass. If one fails, its result is set
    /// aside when it ends and it is reported skipped, as if it had waited.
    pub early: &'static [&'static str],
    /// Checks that must have finished first, whatever their verdict (ordering only: e.g. the
    /// clock check reads the `Date` of the JWT check's answer, and a 401 still has one).
    pub after: &'static [&'static str],
    /// Cleanup that must run even when the run is interrupted or out of time, as long as its
    /// `deps` passed (dropping the test channel).
    pub always: bool,
    /// Part of the `--full` channel round trip: planned only with `--full`.
    pub full: bool,
    pub run: CheckFn,
    /// What a cleanup check reports when a second signal or the deadline cuts it short (what it
    /// left behind, and how to undo that by hand).
    pub cut: Option<fn(&Ctx) -> Outcome>,
}

impl CheckSpec {
    /// A check with hard dependencies only; `after`, `always` and `full` are added with the
    /// builder methods below, so a declaration says only what is special about it.
    #[must_use]
    pub const fn new(
        id: &'static str,
        title: &'static str,
        deps: &'static [&'static str],
        run: CheckFn,
    ) -> Self {
        Self {
            id,
            title,
            deps,
            early: &[],
            after: &[],
            always: false,
            full: false,
            run,
            cut: None,
        }
    }

    /// Depend on these checks without waiting for them (see [`CheckSpec::early`]).
    #[must_use]
    pub const fn early(self, early: &'static [&'static str]) -> Self {
        Self { early, ..self }
    }

    /// Also wait for these checks, whatever their verdict.
    #[must_use]
    pub const fn after(self, after: &'static [&'static str]) -> Self {
        Self { after, ..self }
    }

    /// Run even when the run is interrupted or out of time (cleanup).
    #[must_use]
    pub const fn always(self) -> Self {
        Self {
            always: true,
            ..self
        }
    }

    /// What it reports when its cleanup is cut short.
    #[must_use]
    pub const fn when_cut(self, cut: fn(&Ctx) -> Outcome) -> Self {
        Self {
            cut: Some(cut),
            ..self
        }
    }

    /// Planned only with `--full`.
    #[must_use]
    pub const fn full(self) -> Self {
        Self { full: true, ..self }
    }
}

impl std::fmt::Debug for CheckSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckSpec")
            .field("id", &self.id)
            .field("deps", &self.deps)
            .finish_non_exhaustive()
    }
}
