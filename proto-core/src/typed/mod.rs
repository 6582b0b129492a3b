//! The typed layer: a method is declared once, as a value carrying its [`MethodId`] and its
//! request, response and item types, and both ends use the same declaration. Calling a method
//! with the wrong types is a compile error. Payloads are encoded with
//! [postcard](https://docs.rs/postcard) (serde), which works without an allocator.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tandem_core::typed::{self, Unary};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Add { a: u32, b: u32 }
//!
//! /// Shared by client and server, e.g. in a `protocol` crate both depend on.
//! pub const ADD: Unary<Add, u32> = Unary::new(7, 1);
//!
//! let mut buf = [0u8; 32];
//! let bytes = ADD.encode_request(&Add { a: 2, b: 3 }, &mut buf).unwrap();
//! let req = ADD.decode_request(bytes).unwrap(); // the server side
//! assert_eq!(req, Add { a: 2, b: 3 });
//! // ADD.encode_request(&"text", &mut buf); // does not compile: wrong request type
//! ```
//!
//! Decoding failures map to the statuses of SPEC.md §8: a request that does not decode is
//! answered with BAD_PAYLOAD, a reply that cannot be encoded with ENCODE_FAILED.

use crate::event::{MethodId, SchemaKey};
use crate::status::Status;
use core::fmt;
use core::marker::PhantomData;
use serde::{de::DeserializeOwned, Serialize};

mod def;
mod dispatch;
pub mod rt;
mod service;

pub use def::{method_key, MethodDef, MethodKind, NoError, ServiceDef};
pub use dispatch::{CoreCtx, CoreError, CoreService, Dispatched, Dispatcher, ItemSink};
/// The schema trait of [postcard-schema](https://docs.rs/postcard-schema), which every type of a
/// declared method implements (`#[derive(Schema)]`, with `postcard-schema` as a dependency).
pub use postcard_schema::Schema;

#[doc(hidden)]
pub mod __private {
    pub use super::def::error_schema;
    pub use core::future::Future;
    pub use core::marker::Send;
    pub use postcard_schema;
}

/// A payload could not be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The value could not be encoded (or the buffer is too small): answer ENCODE_FAILED.
    Encode,
    /// The bytes do not decode as the expected type: answer BAD_PAYLOAD.
    Decode,
}

impl CodecError {
    /// The status a responder sends for this error.
    pub fn status(self) -> Status {
        match self {
            CodecError::Encode => Status::ENCODE_FAILED,
            CodecError::Decode => Status::BAD_PAYLOAD,
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Encode => {
                f.write_str("value could not be encoded with postcard (or buffer too small)")
            }
            CodecError::Decode => f.write_str("payload does not decode as the method's declared type"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CodecError {}

/// Encodes `value` into `buf`, returning the used prefix.
pub fn encode<'b, T: Serialize + ?Sized>(value: &T, buf: &'b mut [u8]) -> Result<&'b mut [u8], CodecError> {
    postcard::to_slice(value, buf).map_err(|_| CodecError::Encode)
}

/// Encodes `value` into a new vector.
#[cfg(feature = "alloc")]
pub fn encode_vec<T: Serialize + ?Sized>(value: &T) -> Result<alloc::vec::Vec<u8>, CodecError> {
    postcard::to_allocvec(value).map_err(|_| CodecError::Encode)
}

/// Appends the encoding of `value` to `out` (reusing its capacity: no allocation in steady state).
#[cfg(feature = "alloc")]
pub fn encode_into_vec<T: Serialize + ?Sized>(
    value: &T,
    out: &mut alloc::vec::Vec<u8>,
) -> Result<(), CodecError> {
    let v = core::mem::take(out);
    *out = postcard::to_extend(value, v).map_err(|_| CodecError::Encode)?;
    Ok(())
}

/// Decodes a whole payload as `T`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Ok(v),
        _ => Err(CodecError::Decode),
    }
}

macro_rules! method_type {
    ($(#[$doc:meta])* $name:ident < $($p:ident $(= $default:ty)?),* > key $sig:ty) => {
        $(#[$doc])*
        pub struct $name<$($p $(= $default)?),*> {
            id: MethodId,
            key: Option<SchemaKey>,
            path: &'static str,
            _types: PhantomData<fn($($p),*)>,
        }

        impl<$($p),*> $name<$($p),*> {
            /// Declares the method at `module`/`method`, without a schema key: requests are not
            /// checked against the responder's declaration (SPEC.md §7.10), and errors name the
            /// method by its ids. [`service!`](crate::service) declares methods with keys.
            pub const fn new(module: u32, method: u32) -> Self {
                $name { id: MethodId::new(module, method), key: None, path: "", _types: PhantomData }
            }
            /// Declares the method at `module`/`method` with its `path` (`"service.method"`) and
            /// the schema key computed from the path and the schemas of its types (SPEC.md
            /// §7.10.3), at compile time when used in a `const`. This is what
            /// [`service!`](crate::service) generates.
            pub const fn keyed(module: u32, method: u32, path: &'static str) -> Self
            where
                $sig: Schema,
            {
                let key = method_key::<$sig>(path);
                $name { id: MethodId::new(module, method), key: Some(key), path, _types: PhantomData }
            }
            /// Its address on the wire.
            pub const fn id(&self) -> MethodId {
                self.id
            }
            /// Its schema key, if declared with one.
            pub const fn key(&self) -> Option<SchemaKey> {
                self.key
            }
            /// Its path (`"service.method"`), or `""` when declared with [`new`](Self::new).
            pub const fn path(&self) -> &'static str {
                self.path
            }
            /// How errors name it: its path, or `module/method` without one.
            pub fn label(&self) -> MethodLabel {
                MethodLabel { id: self.id, path: self.path }
            }
        }

        impl<$($p),*> Clone for $name<$($p),*> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<$($p),*> Copy for $name<$($p),*> {}
        impl<$($p),*> fmt::Debug for $name<$($p),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.key {
                    None => write!(f, "{}({}/{})", stringify!($name), self.id.module, self.id.method),
                    Some(k) => write!(
                        f,
                        "{}({} {}/{} key {k})",
                        stringify!($name),
                        self.path,
                        self.id.module,
                        self.id.method
                    ),
                }
            }
        }
    };
}

method_type! {
    /// A unary method: one `Req`, answered by one `Resp`, or by the typed application error
    /// `E` ([`NoError`] when the method declares none; SPEC.md §8.7).
    Unary<Req, Resp, E = NoError> key (Req, Resp, E)
}
method_type! {
    /// A notification carrying `T`, sent reliably (acknowledged) or unreliably.
    Notification<T> key (T,)
}
method_type! {
    /// A streaming method: opened with `Init`; the opener sends `Up` items and the responder
    /// sends `Down` items (either may send none).
    Streaming<Init, Up, Down> key (Init, Up, Down)
}

/// How a method is named in errors and logs: `"fleet.set_speed"` when declared with a path,
/// `"42/1"` (module/method) otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MethodLabel {
    /// Its address.
    pub id: MethodId,
    /// Its path, or `""`.
    pub path: &'static str,
}

impl MethodLabel {
    /// A method known only by its address.
    pub const fn id(id: MethodId) -> Self {
        MethodLabel { id, path: "" }
    }
}

impl fmt::Display for MethodLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}/{}", self.id.module, self.id.method)
        } else {
            f.write_str(self.path)
        }
    }
}

impl<Req: Serialize + DeserializeOwned, Resp: Serialize + DeserializeOwned, E> Unary<Req, Resp, E> {
    /// Encodes a request.
    pub fn encode_request<'b>(&self, req: &Req, buf: &'b mut [u8]) -> Result<&'b mut [u8], CodecError> {
        encode(req, buf)
    }
    /// Decodes a request (responder side).
    pub fn decode_request(&self, bytes: &[u8]) -> Result<Req, CodecError> {
        decode(bytes)
    }
    /// Encodes a response (responder side).
    pub fn encode_response<'b>(&self, resp: &Resp, buf: &'b mut [u8]) -> Result<&'b mut [u8], CodecError> {
        encode(resp, buf)
    }
    /// Decodes a response.
    pub fn decode_response(&self, bytes: &[u8]) -> Result<Resp, CodecError> {
        decode(bytes)
    }
}

impl<T: Serialize + DeserializeOwned> Notification<T> {
    /// Encodes the notification's payload.
    pub fn encode<'b>(&self, value: &T, buf: &'b mut [u8]) -> Result<&'b mut [u8], CodecError> {
        encode(value, buf)
    }
    /// Decodes the notification's payload.
    pub fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        decode(bytes)
    }
}

impl<Init, Up, Down> Streaming<Init, Up, Down>
where
    Init: Serialize + DeserializeOwned,
    Up: Serialize + DeserializeOwned,
    Down: Serialize + DeserializeOwned,
{
    /// Encodes the initial payload.
    pub fn encode_init<'b>(&self, v: &Init, buf: &'b mut [u8]) -> Result<&'b mut [u8], CodecError> {
        encode(v, buf)
    }
    /// Decodes the initial payload.
    pub fn decode_init(&self, bytes: &[u8]) -> Result<Init, CodecError> {
        decode(bytes)
    }
    /// Encodes an item from the opener.
    pub fn encode_up<'b>(&self, v: &Up, buf: &'b mut [u8]) -> Result<&'b mut [u8], CodecError> {
        encode(v, buf)
    }
    /// Decodes an item from the opener.
    pub fn decode_up(&self, bytes: &[u8]) -> Result<Up, CodecError> {
        decode(bytes)
    }
    /// Encodes an item from the responder.
    pub fn encode_down<'b>(&self, v: &Down, buf: &'b mut [u8]) -> Result<&'b mut [u8], CodecError> {
        encode(v, buf)
    }
    /// Decodes an item from the responder.
    pub fn decode_down(&self, bytes: &[u8]) -> Result<Down, CodecError> {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Unary<(u32, u32), u64> = Unary::new(1, 2);

    #[test]
    fn round_trip_and_errors() {
        let mut buf = [0u8; 16];
        let b = M.encode_request(&(3, 4), &mut buf).unwrap().to_vec();
        assert_eq!(M.decode_request(&b), Ok((3, 4)));
        assert_eq!(M.decode_response(&[0xff; 11]), Err(CodecError::Decode));
        let mut tiny = [0u8; 1];
        assert_eq!(M.encode_request(&(300, 4), &mut tiny).map(|_| ()), Err(CodecError::Encode));
        assert_eq!(CodecError::Decode.status(), Status::BAD_PAYLOAD);
        // Trailing bytes are not silently ignored.
        let mut extra = b.clone();
        extra.push(0);
        assert_eq!(M.decode_request(&extra), Err(CodecError::Decode));
        assert_eq!(format!("{M:?}"), "Unary(1/2)");
    }
}

#[cfg(test)]
mod service_tests;
