//! Status codes (SPEC.md §8) as `#define`d constants for C: `uint32_t` values, so that a code
//! this build does not know passes through unchanged. A test checks them against
//! `tandem_core::Status::ALL`.

/// Success.
pub const TANDEM_STATUS_OK: u32 = 0;
/// Accepted for later processing (DAOS dRPC `SUBMITTED`).
pub const TANDEM_STATUS_ACCEPTED: u32 = 1;
/// The handler ran and failed (DAOS dRPC `FAILURE`).
pub const TANDEM_STATUS_FAILED: u32 = 2;
/// No module with this ID is registered at the responder.
pub const TANDEM_STATUS_UNKNOWN_MODULE: u32 = 3;
/// The module exists but has no method with this ID.
pub const TANDEM_STATUS_UNKNOWN_METHOD: u32 = 4;
/// The call envelope could not be decoded (DAOS `FAILED_UNMARSHAL_CALL`).
pub const TANDEM_STATUS_BAD_REQUEST: u32 = 5;
/// The request payload could not be decoded into the method's type (`FAILED_UNMARSHAL_PAYLOAD`).
pub const TANDEM_STATUS_BAD_PAYLOAD: u32 = 6;
/// The handler's reply could not be encoded (DAOS `FAILED_MARSHAL`).
pub const TANDEM_STATUS_ENCODE_FAILED: u32 = 7;
/// The exchange was cancelled by either side.
pub const TANDEM_STATUS_CANCELLED: u32 = 8;
/// The exchange's deadline passed before it completed.
pub const TANDEM_STATUS_DEADLINE_EXCEEDED: u32 = 9;
/// A resource (concurrency, memory, queue) is exhausted at the responder.
pub const TANDEM_STATUS_RESOURCE_EXHAUSTED: u32 = 10;
/// A message exceeds a size limit.
pub const TANDEM_STATUS_TOO_LARGE: u32 = 11;
/// The peer is not available (connection lost, going away); safe to retry elsewhere.
pub const TANDEM_STATUS_UNAVAILABLE: u32 = 12;
/// The request was well-formed but its arguments are invalid.
pub const TANDEM_STATUS_INVALID_ARGUMENT: u32 = 13;
/// A named entity was not found.
pub const TANDEM_STATUS_NOT_FOUND: u32 = 14;
/// The entity to create already exists.
pub const TANDEM_STATUS_ALREADY_EXISTS: u32 = 15;
/// The caller is known but not allowed to do this.
pub const TANDEM_STATUS_PERMISSION_DENIED: u32 = 16;
/// The caller could not be authenticated.
pub const TANDEM_STATUS_UNAUTHENTICATED: u32 = 17;
/// The system is not in a state that allows this operation.
pub const TANDEM_STATUS_FAILED_PRECONDITION: u32 = 18;
/// The operation was aborted (concurrency conflict, for example).
pub const TANDEM_STATUS_ABORTED: u32 = 19;
/// An argument is outside the valid range.
pub const TANDEM_STATUS_OUT_OF_RANGE: u32 = 20;
/// The responder does not implement this operation or exchange type.
pub const TANDEM_STATUS_UNIMPLEMENTED: u32 = 21;
/// An internal error at the responder.
pub const TANDEM_STATUS_INTERNAL: u32 = 22;
/// Unrecoverable data loss or corruption.
pub const TANDEM_STATUS_DATA_LOSS: u32 = 23;
/// An error that fits no other code; also how unknown codes are treated.
pub const TANDEM_STATUS_UNKNOWN: u32 = 24;
/// Resumption: the reply was evicted from the reply cache before it was acknowledged; the
/// handler is not run again, so the outcome is lost.
pub const TANDEM_STATUS_REPLY_EVICTED: u32 = 25;
/// The request's schema key differs from the key of the responder's declaration of the
/// method: the two ends disagree on its types (SPEC.md §7.10). Nothing was decoded.
pub const TANDEM_STATUS_SCHEMA_MISMATCH: u32 = 26;
/// The handler failed with the method's typed application error, carried as the status
/// body's details (SPEC.md §8.7).
pub const TANDEM_STATUS_APPLICATION_ERROR: u32 = 27;
/// The peer violated the protocol (a state rule, a bad ID, a bad handshake).
pub const TANDEM_STATUS_PROTOCOL_ERROR: u32 = 64;
/// The peer sent bytes that do not decode as a frame.
pub const TANDEM_STATUS_FRAME_ENCODING_ERROR: u32 = 65;
/// A frame's length prefix exceeds the receiver's max_frame_size.
pub const TANDEM_STATUS_FRAME_TOO_LARGE: u32 = 66;
/// The peer sent more stream data than its credit allowed, or overflowed a credit window.
pub const TANDEM_STATUS_FLOW_CONTROL_ERROR: u32 = 67;
/// The peer exceeded a limit announced in the handshake (concurrent calls/streams, message size).
pub const TANDEM_STATUS_LIMIT_EXCEEDED: u32 = 68;
/// No protocol version both sides support.
pub const TANDEM_STATUS_INCOMPATIBLE_VERSION: u32 = 69;
/// Nothing was received for the idle timeout.
pub const TANDEM_STATUS_IDLE_TIMEOUT: u32 = 70;
/// The handshake did not complete in time.
pub const TANDEM_STATUS_HANDSHAKE_TIMEOUT: u32 = 71;
/// The peer generates excessive load (ping flood, rapid reset, tiny-frame flood).
pub const TANDEM_STATUS_ENHANCE_YOUR_CALM: u32 = 72;
/// Resumption: the session is unknown or expired.
pub const TANDEM_STATUS_SESSION_EXPIRED: u32 = 73;
