//! Workspace integration tests: one binary, helpers in `common`.

mod alloc;
mod bad;
mod common;
mod corpus;
mod gate;
mod lambda;
mod regression;
mod roundtrip;
