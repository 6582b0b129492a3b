//! The introspection service (SPEC.md Appendix B): its declaration, its messages, and the
//! answers a [`Registry`](crate::handlers::Registry) gives from the services registered in it.
//! (Layer 1: imports `outcome`.)

use postcard_schema::schema::owned::OwnedNamedType;
use postcard_schema::Schema;
use serde::{Deserialize, Serialize};
use tandem_core::typed::{decode, encode_vec, MethodDef, MethodKind, ServiceDef};
use tandem_core::{MethodId, RequestKind, SchemaKey, Status};

use crate::outcome::Outcome;

/// One service a peer describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Schema)]
pub struct ServiceInfo {
    /// Its name (`"fleet"`).
    pub name: String,
    /// Its module id.
    pub module: u32,
    /// Its doc comment.
    pub doc: String,
}

/// One method of a described service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Schema)]
pub struct MethodInfo {
    /// Its name (`"set_speed"`).
    pub name: String,
    /// Its method id.
    pub id: u32,
    /// How it is called.
    pub kind: MethodKind,
    /// Its schema key (SPEC.md §7.10.3).
    pub key: [u8; 8],
    /// Its doc comment.
    pub doc: String,
}

/// The schemas of one method's types, in postcard-schema's serialisable form: enough to encode
/// a request and decode a response of a method one has never seen
/// ([`dynamic`](crate::dynamic)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Schema)]
pub struct MethodSchema {
    /// The request, the notification's value or the stream's initial value.
    pub request: OwnedNamedType,
    /// A unary method's response.
    pub response: Option<OwnedNamedType>,
    /// The items a stream's opener sends.
    pub up: Option<OwnedNamedType>,
    /// The items a stream's responder sends.
    pub down: Option<OwnedNamedType>,
    /// A unary method's application error.
    pub error: Option<OwnedNamedType>,
}

tandem_core::service! {
    /// The introspection service (SPEC.md Appendix B): the services, methods and schemas a
    /// peer describes.
    pub service introspection = 0xFFFF_FF00 {
        /// The services this peer describes, in increasing module order.
        unary services(()) -> Vec<ServiceInfo> = 1;
        /// The methods of the service on a module (NOT_FOUND when none is described there).
        unary methods(u32) -> Vec<MethodInfo> = 2;
        /// The schema of one method, by module and method id (NOT_FOUND when not described).
        unary schema((u32, u32)) -> MethodSchema = 3;
    }
}

/// The introspection service's module id (SPEC.md §15.8).
pub const MODULE: u32 = introspection::MODULE;

fn all<'a>(services: &'a [&'static ServiceDef]) -> impl Iterator<Item = &'static ServiceDef> + 'a {
    services.iter().copied().chain(core::iter::once(&introspection::DEF))
}

fn method_info(m: &MethodDef) -> MethodInfo {
    MethodInfo { name: m.name.into(), id: m.id.method, kind: m.kind, key: m.key.0, doc: m.doc.into() }
}

fn method_schema(m: &MethodDef) -> MethodSchema {
    let own = |s: Option<&postcard_schema::schema::NamedType>| s.map(OwnedNamedType::from);
    MethodSchema {
        request: m.request.into(),
        response: own(m.response),
        up: own(m.up),
        down: own(m.down),
        error: own(m.error),
    }
}

/// The answer to a request on the introspection module, from the services a registry holds.
pub(crate) fn answer(
    services: &[&'static ServiceDef],
    method: MethodId,
    kind: RequestKind,
    key: Option<SchemaKey>,
    payload: &[u8],
) -> Outcome {
    let Some(def) = introspection::DEF.method(method.method) else {
        return Outcome::failed(
            Status::UNKNOWN_METHOD,
            format!("introspection has no method {}", method.method),
            vec![],
        );
    };
    if kind != RequestKind::Call {
        return Outcome::failed(Status::UNIMPLEMENTED, format!("{} is a unary method", def.path), vec![]);
    }
    if let Some(k) = key.filter(|k| *k != def.key) {
        let msg =
            format!("schema mismatch for {}: the caller's key is {k}, this side's is {}", def.path, def.key);
        return Outcome::failed(Status::SCHEMA_MISMATCH, msg, vec![]);
    }
    let bad = || {
        Outcome::failed(
            Status::BAD_PAYLOAD,
            format!("the request does not decode as the request of {}", def.path),
            vec![],
        )
    };
    let reply = |r: Result<Vec<u8>, _>| match r {
        Ok(b) => Outcome::ok(b),
        Err(_) => Outcome::failed(Status::ENCODE_FAILED, "the answer does not encode", vec![]),
    };
    match method.method {
        1 => {
            if decode::<()>(payload).is_err() {
                return bad();
            }
            let list: Vec<ServiceInfo> = all(services)
                .map(|s| ServiceInfo { name: s.name.into(), module: s.module, doc: s.doc.into() })
                .collect();
            reply(encode_vec(&list))
        }
        2 => {
            let Ok(module) = decode::<u32>(payload) else { return bad() };
            match all(services).find(|s| s.module == module) {
                Some(s) => reply(encode_vec(&s.methods.iter().map(method_info).collect::<Vec<_>>())),
                None => Outcome::failed(
                    Status::NOT_FOUND,
                    format!("no service is described on module {module}"),
                    vec![],
                ),
            }
        }
        _ => {
            let Ok((module, id)) = decode::<(u32, u32)>(payload) else { return bad() };
            match all(services).find(|s| s.module == module).and_then(|s| s.method(id)) {
                Some(m) => reply(encode_vec(&method_schema(m))),
                None => Outcome::failed(
                    Status::NOT_FOUND,
                    format!("no method {module}/{id} is described"),
                    vec![],
                ),
            }
        }
    }
}
