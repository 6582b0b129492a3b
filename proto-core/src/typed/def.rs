//! What a declared service is made of, as data: its [`ServiceDef`] and the [`MethodDef`] of each
//! method (kind, ids, schema key, doc string, schemas), and how a method's key is computed
//! ([`method_key`], SPEC.md §7.10.3). [`service!`](crate::service) builds them at compile time;
//! registries use them to refuse duplicates and check keys, introspection serves them.

use core::fmt;

use postcard_schema::key::Key;
use postcard_schema::schema::{DataModelType, DataModelVariant, NamedType, NamedVariant};
use postcard_schema::Schema;
use serde::{Deserialize, Serialize};

use crate::event::{MethodId, SchemaKey};

/// The schema key of the method at `path` (`"service.method"`) whose signature is `T` (SPEC.md
/// §7.10.3): FNV-1a 64 over the path's UTF-8 bytes, then over the postcard-schema walk of `T`
/// (field and variant names included, type names not), as 8 bytes, least significant first.
/// The signature of a unary method is `(Req, Resp, E)`, of a notification `(T,)`, of a stream
/// `(Init, Up, Down)`.
///
/// This is postcard-schema's [`Key::for_path`], the key postcard-rpc uses for its endpoints:
/// a `const fn`, so a declaration's key costs nothing at run time.
pub const fn method_key<T: Schema + ?Sized>(path: &str) -> SchemaKey {
    SchemaKey(Key::for_path::<T>(path).to_bytes())
}

/// The application error of a method that declares none: it has no value, so such a method
/// never answers APPLICATION_ERROR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NoError {}

impl Schema for NoError {
    const SCHEMA: &'static NamedType = &NamedType { name: "NoError", ty: &DataModelType::Enum(&[]) };
}

impl fmt::Display for NoError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

#[cfg(feature = "std")]
impl std::error::Error for NoError {}

/// The kind of a declared method: how it is called, and which exchange carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MethodKind {
    /// A CALL answered by one RESPONSE.
    Unary,
    /// A reliable notification (NOTIFY, acknowledged with a status); also accepts SIGNAL.
    Notify,
    /// An unreliable notification (SIGNAL); also accepts NOTIFY.
    Signal,
    /// A stream opened with FIN: the responder sends items.
    ServerStream,
    /// A stream on which the opener sends items and the responder answers with one item.
    ClientStream,
    /// A stream with items both ways.
    Bidi,
}

impl Schema for MethodKind {
    const SCHEMA: &'static NamedType = &NamedType {
        name: "MethodKind",
        ty: &DataModelType::Enum(&[
            &NamedVariant { name: "Unary", ty: &DataModelVariant::UnitVariant },
            &NamedVariant { name: "Notify", ty: &DataModelVariant::UnitVariant },
            &NamedVariant { name: "Signal", ty: &DataModelVariant::UnitVariant },
            &NamedVariant { name: "ServerStream", ty: &DataModelVariant::UnitVariant },
            &NamedVariant { name: "ClientStream", ty: &DataModelVariant::UnitVariant },
            &NamedVariant { name: "Bidi", ty: &DataModelVariant::UnitVariant },
        ]),
    };
}

impl MethodKind {
    /// Its name in a service declaration (`"unary"`, `"server_stream"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            MethodKind::Unary => "unary",
            MethodKind::Notify => "notify",
            MethodKind::Signal => "signal",
            MethodKind::ServerStream => "server_stream",
            MethodKind::ClientStream => "client_stream",
            MethodKind::Bidi => "bidi",
        }
    }

    /// Whether it is served as a stream (STREAM_OPEN).
    pub const fn is_stream(self) -> bool {
        matches!(self, MethodKind::ServerStream | MethodKind::ClientStream | MethodKind::Bidi)
    }

    /// Whether it is served as a notification (NOTIFY and SIGNAL).
    pub const fn is_notification(self) -> bool {
        matches!(self, MethodKind::Notify | MethodKind::Signal)
    }
}

/// One method of a declared service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodDef {
    /// Its name in the declaration (`"set_speed"`).
    pub name: &'static str,
    /// `"service.method"`: what errors and logs call it, and the first input of its key.
    pub path: &'static str,
    /// Its address.
    pub id: MethodId,
    /// How it is called.
    pub kind: MethodKind,
    /// Its schema key (SPEC.md §7.10.3).
    pub key: SchemaKey,
    /// Its doc comment, one line per `///` line (each with the leading space rustdoc keeps).
    pub doc: &'static str,
    /// The request (unary), the value (notification) or the initial value (stream).
    pub request: &'static NamedType,
    /// The response of a unary method.
    pub response: Option<&'static NamedType>,
    /// The items the opener of a stream sends.
    pub up: Option<&'static NamedType>,
    /// The items the responder of a stream sends (a client stream's response is one of them).
    pub down: Option<&'static NamedType>,
    /// The typed application error of a unary method (`None` when it declares none).
    pub error: Option<&'static NamedType>,
}

/// A declared service: its name, module id, doc string and methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceDef {
    /// Its name in the declaration (`"fleet"`).
    pub name: &'static str,
    /// Its module id.
    pub module: u32,
    /// Its doc comment.
    pub doc: &'static str,
    /// Its methods, in declaration order.
    pub methods: &'static [MethodDef],
}

impl ServiceDef {
    /// The method with this method id.
    pub fn method(&self, method: u32) -> Option<&'static MethodDef> {
        self.methods.iter().find(|m| m.id.method == method)
    }

    /// How many of its methods have method id `id` (1 in a valid declaration).
    pub const fn methods_with_id(&self, id: u32) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.methods.len() {
            if self.methods[i].id.method == id {
                n += 1;
            }
            i += 1;
        }
        n
    }
}

/// The schema of `T`, or `None` for [`NoError`] (the macro's "no error declared").
#[doc(hidden)]
pub const fn error_schema<T: Schema + ?Sized>() -> Option<&'static NamedType> {
    let s = T::SCHEMA;
    match s.ty {
        DataModelType::Enum([]) if is_no_error(s.name) => None,
        _ => Some(s),
    }
}

const fn is_no_error(name: &str) -> bool {
    let (a, b) = (name.as_bytes(), b"NoError");
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
