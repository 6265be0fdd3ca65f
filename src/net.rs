//! How netcheck reaches a host: one network layer that the checks call step by step, so each
//! phase (resolve, connect, tunnel, handshake) gets its own timing and its own failure.

pub mod tls;
