//! tandem-core (placeholder docs, replaced below)
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod frame;
pub mod status;
pub mod varint;

pub use status::Status;
