//! What a handler answers ([`Outcome`]), and how it becomes the payload of a RESPONSE (a status
//! body when the peer negotiated `error_details`, SPEC.md §8.7). (Layer 0: imports no other file
//! of the crate.)

use tandem_core::typed::MethodLabel;
use tandem_core::{Features, Status, StatusBody};

/// A handler's answer: its status, the response (OK), and for a failure a message and details
/// for the caller (SPEC.md §8.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The status.
    pub status: Status,
    /// A unary method's response (OK only).
    pub body: Vec<u8>,
    /// A failure's message.
    pub message: Option<String>,
    /// A failure's details (an application error's encoding).
    pub details: Vec<u8>,
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome { status: Status::OK, body: Vec::new(), message: None, details: Vec::new() }
    }
}

impl Outcome {
    /// Success with `body`.
    pub fn ok(body: Vec<u8>) -> Self {
        Outcome { status: Status::OK, body, ..Outcome::default() }
    }

    /// A failure with a message and details.
    pub fn failed(status: Status, message: impl Into<String>, details: Vec<u8>) -> Self {
        let message = message.into();
        Outcome { status, body: Vec::new(), message: (!message.is_empty()).then_some(message), details }
    }

    /// A bare status (and, for OK, the response `body`).
    pub fn status(status: Status, body: Vec<u8>) -> Self {
        Outcome { status, body, ..Outcome::default() }
    }

    /// The payload of its RESPONSE: the body for OK; for a failure, its status body if the peer
    /// negotiated `error_details` and there is something to say, else nothing.
    pub fn wire_body(self, features: Features) -> Vec<u8> {
        if self.status == Status::OK {
            return self.body;
        }
        if !features.contains(Features::ERROR_DETAILS) || (self.message.is_none() && self.details.is_empty())
        {
            return Vec::new();
        }
        let message = StatusBody::fit(self.message.as_deref().unwrap_or(""));
        let b = StatusBody { message: message.as_bytes(), details: &self.details };
        let mut out = vec![0; b.encoded_len()];
        let n = b.encode(&mut out).unwrap_or(0);
        out.truncate(n);
        out
    }
}

/// The answer to a request whose payload does not decode as its method's type.
pub fn bad_payload(method: MethodLabel, ty: &str) -> Outcome {
    Outcome::failed(
        Status::BAD_PAYLOAD,
        format!("the request does not decode as {ty}, the request type of {method} here"),
        Vec::new(),
    )
}
