//! Workspace integration tests: one binary, helpers in `common`.

mod alloc;
mod bad;
mod common;
mod corpus;
mod fuzz_input;
mod gate;
mod lambda;
mod lambda_events;
mod lossy;
mod png_kinds;
mod proxy;
mod regression;
mod roundtrip;
