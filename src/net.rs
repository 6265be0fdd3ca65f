//! How netcheck reaches a host: shared network plumbing used by every check and the API client.

pub mod proxy;
