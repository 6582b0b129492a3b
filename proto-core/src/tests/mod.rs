//! Whole-connection tests: two cores wired together in memory with a fake clock.

pub(crate) mod pair;
mod scenarios;
mod limits;
