//! The checks. Each module pairs with a catalog file (`checks/*.toml`): it declares its
//! [`CheckSpec`](crate::check::CheckSpec)s, runs, and maps what it saw to a
//! [`RowId`](crate::catalog::RowId) in one `classify` function.

pub mod allowlist;
pub mod answer;
pub mod auth;
pub mod clock;
pub mod discovery;
pub mod dns;
pub mod policy;
pub mod proxy;
pub mod rate;
pub mod stage;
pub mod stream;
pub mod tcp;
pub mod tls;

/// Declares the `CheckSpec` of a network check that runs for one host role, so the account and
/// ingest variants stay one function.
macro_rules! host_check {
    // The stage host (part of `--full`): the same check, its finding naming the provider.
    ($name:ident, $id:literal, $title:literal, [$($dep:literal),*], stage) => {
        pub const $name: $crate::check::CheckSpec =
            $crate::check::CheckSpec::new($id, $title, &[$($dep),*], |ctx| {
                Box::pin(async move {
                    let named = ctx.clone();
                    $crate::checks::stage::named(&named, run(ctx, $crate::context::HostRole::Stage).await)
                })
            })
            .full();
    };
    ($name:ident, $id:literal, $title:literal, [$($dep:literal),*], $role:expr) => {
        pub const $name: $crate::check::CheckSpec =
            $crate::check::CheckSpec::new($id, $title, &[$($dep),*], |ctx| Box::pin(run(ctx, $role)));
    };
}
pub(crate) use host_check;

/// The endpoint a host check looks at, or the skip that says why there is none: the ingest host
/// and the stage hosts need credentials (discovery, `:pipe-info`) first; the identity provider's
/// token endpoint exists only under the client-credentials grant.
pub(crate) fn endpoint_or_skip(
    ctx: &crate::context::Ctx,
    role: crate::context::HostRole,
) -> Result<crate::snowflake::account::Endpoint, crate::outcome::Outcome> {
    use crate::outcome::{Outcome, SkipReason};
    if role != crate::context::HostRole::Account && ctx.settings.snowflake.is_none() {
        return Err(auth::not_configured());
    }
    if let (crate::context::HostRole::Idp, None, Some(sf)) =
        (role, ctx.endpoint(role), &ctx.settings.snowflake)
    {
        // Only the client-credentials grant has an identity provider to reach.
        return Err(auth::not_applicable(
            sf,
            "no OAuth token endpoint: the connection does not use oauth_client_credentials".into(),
        ));
    }
    ctx.endpoint(role).ok_or_else(|| {
        Outcome::skip(SkipReason::NotConfigured(
            "the host is not known yet".into(),
        ))
    })
}
