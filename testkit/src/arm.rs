//! The robot-arm service the runtimes' declared-service tests share (`tests/service.rs` of both
//! runtimes, `demo/tests/drift.rs`): one method of every kind, a typed application error, and
//! [`drifted`], the same service as another build declared it (other types under the same ids).

use postcard_schema::Schema;
use serde::{Deserialize, Serialize};

/// Where to move.
#[derive(Serialize, Deserialize, Schema, Debug, Clone, PartialEq)]
pub struct Move {
    /// Horizontal.
    pub x: i32,
    /// Vertical.
    pub y: i32,
}

/// Why the arm did not move.
#[derive(Serialize, Deserialize, Schema, Debug, Clone, PartialEq)]
pub enum ArmError {
    /// Something is in the way.
    Blocked {
        /// Where.
        at: i32,
    },
    /// Moving already.
    Busy,
}

tandem_core::service! {
    /// A robot arm, declared once for both ends.
    pub service arm = 70 {
        /// Doubles a number.
        unary double(i64) -> i64 = 1;
        /// Moves the arm; refuses beyond x = 100.
        unary go(Move) -> Move | ArmError = 2;
        /// A log line, acknowledged.
        notify log(String) = 3;
        /// A beep, best effort.
        signal beep(u8) = 4;
        /// Counts from 0 to n - 1.
        server_stream count(u32) -> u32 = 5;
        /// Sums what it is sent.
        client_stream sum(u64, u64) -> u64 = 6;
        /// Echoes every line, upper-cased.
        bidi shout((), String) -> String = 7;
    }
}

/// The arm as another build declared it: `double` on `u64`, and `Move`'s `y` renamed `z`.
pub mod drifted {
    use super::*;

    /// The older `Move`: its second field is called `z`.
    #[derive(Serialize, Deserialize, Schema, Debug, Clone, PartialEq)]
    pub struct Move {
        /// Horizontal.
        pub x: i32,
        /// Vertical, under its old name.
        pub z: i32,
    }

    tandem_core::service! {
        /// The older declaration.
        pub service arm = 70 {
            /// Doubles a number (`u64` here, `i64` in [`super::arm`]).
            unary double(u64) -> u64 = 1;
            /// Moves the arm (with the older `Move`).
            unary go(Move) -> Move | ArmError = 2;
            /// A log line as bytes (a `String` in [`super::arm`]).
            notify log(Vec<u8>) = 3;
            /// A beep (`u16` here, `u8` in [`super::arm`]).
            signal beep(u16) = 4;
        }
    }
}
