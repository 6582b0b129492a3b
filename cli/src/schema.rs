//! Introspection (SPEC.md Appendix B): what a server describes, and finding one method by its
//! `service.method` name (or `module.method` numbers) with its schema.

use std::time::Duration;

use tandem_std::introspect::{introspection, MethodInfo, MethodSchema, ServiceInfo};
use tandem_std::tandem_core::typed::{decode, encode_vec, MethodKind};
use tandem_std::{CallError, MethodId, Peer, SchemaKey, Status};

use crate::fail::{self, Code, Failure, Outcome};

/// A method found by introspection.
#[derive(Clone)]
pub struct Resolved {
    /// Its service.
    pub service: ServiceInfo,
    /// The method.
    pub method: MethodInfo,
    /// Its types.
    pub schema: MethodSchema,
}

impl Resolved {
    /// Its ids.
    pub fn id(&self) -> MethodId {
        MethodId::new(self.service.module, self.method.id)
    }

    /// Its schema key.
    pub fn key(&self) -> SchemaKey {
        SchemaKey(self.method.key)
    }

    /// `service.method`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.service.name, self.method.name)
    }
}

/// The name of a method kind, as declared.
pub fn kind_name(k: MethodKind) -> &'static str {
    match k {
        MethodKind::Unary => "unary",
        MethodKind::Notify => "notify",
        MethodKind::Signal => "signal",
        MethodKind::ServerStream => "server_stream",
        MethodKind::ClientStream => "client_stream",
        MethodKind::Bidi => "bidi",
    }
}

fn intro_failure(peer: &Peer, e: CallError, what: &str) -> Failure {
    match e.status() {
        Status::UNKNOWN_MODULE => Failure::new(
            Code::UnknownMethod,
            format!(
                "the server does not serve introspection (UNKNOWN_MODULE), so {what} is unknown: call by numbers with --raw MODULE.METHOD HEX"
            ),
        ),
        _ => {
            let mut f = fail::call(peer, &e);
            f.message = format!("introspection failed: {}", f.message);
            f
        }
    }
}

/// The services `peer` describes.
pub fn services(peer: &Peer, deadline: Duration) -> Outcome<Vec<ServiceInfo>> {
    let intro = introspection::BlockingClient::new(peer.clone()).with_deadline(deadline);
    intro.services(&()).map_err(|e| intro_failure(peer, e, "what it serves"))
}

/// The methods of the service on `module`.
pub fn methods(peer: &Peer, module: u32, deadline: Duration) -> Outcome<Vec<MethodInfo>> {
    let intro = introspection::BlockingClient::new(peer.clone()).with_deadline(deadline);
    intro.methods(&module).map_err(|e| intro_failure(peer, e, "the service"))
}

/// `service.method` (or numbers) split in two.
pub fn split(spec: &str) -> Outcome<(&str, &str)> {
    match spec.rsplit_once('.') {
        Some((s, m)) if !s.is_empty() && !m.is_empty() => Ok((s, m)),
        _ => Err(Failure::usage(format!("`{spec}` is not a method: write service.method (e.g. arm.go)"))),
    }
}

/// The service `name` (or module number) among `services`.
pub fn find_service(services: Vec<ServiceInfo>, name: &str) -> Outcome<ServiceInfo> {
    let number: Option<u32> = name.parse().ok();
    let listed = services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    services.into_iter().find(|s| s.name == name || Some(s.module) == number).ok_or_else(|| {
        Failure::new(
            Code::UnknownMethod,
            format!("the server describes no service `{name}` (it describes: {listed})"),
        )
    })
}

/// Finds `spec` (`service.method`) on `peer` and fetches its schema.
pub fn resolve(peer: &Peer, spec: &str, deadline: Duration) -> Outcome<Resolved> {
    let (service_name, method_name) = split(spec)?;
    let service = find_service(services(peer, deadline)?, service_name)?;
    let methods = methods(peer, service.module, deadline)?;
    let number: Option<u32> = method_name.parse().ok();
    let Some(method) = methods.iter().find(|m| m.name == method_name || Some(m.id) == number).cloned() else {
        let listed = methods.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(Failure::new(
            Code::UnknownMethod,
            format!("service {} has no method `{method_name}` (its methods: {listed})", service.name),
        ));
    };
    let schema = fetch_schema(peer, service.module, method.id, deadline)?;
    Ok(Resolved { service, method, schema })
}

/// Largest schema accepted from a server (64 KiB). A schema nests (`Option<Option<…>>`), and
/// decoding it recurses once per level: bounding its size bounds the depth (to about 32,000
/// levels, which the tool's 256 MiB stack holds), whatever the server's own message limit.
/// Real schemas are a few hundred bytes.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// The schema of `module`.`id`, from a server that may be hostile (see [`MAX_SCHEMA_BYTES`]).
fn fetch_schema(peer: &Peer, module: u32, id: u32, deadline: Duration) -> Outcome<MethodSchema> {
    let m = introspection::schema;
    let request = encode_vec(&(module, id)).map_err(|e| Failure::usage(format!("cannot encode {e:?}")))?;
    let bytes = match m.key() {
        Some(key) => peer.call_raw_keyed(m.id(), key, &request, deadline),
        None => peer.call_raw(m.id(), &request, deadline),
    };
    let bytes = bytes.map_err(|e| intro_failure(peer, e, "the method's schema"))?;
    if bytes.len() > MAX_SCHEMA_BYTES {
        return Err(Failure::new(
            Code::SchemaMismatch,
            format!("the server's schema of {module}.{id} is {} bytes, more than the {MAX_SCHEMA_BYTES} this tool accepts", bytes.len()),
        ));
    }
    decode::<MethodSchema>(&bytes).map_err(|e| {
        Failure::new(Code::SchemaMismatch, format!("the server's schema of {module}.{id} does not decode ({e:?}): not a schema of SPEC.md Appendix B"))
    })
}

/// `module.method` numbers.
pub fn parse_ids(spec: &str) -> Outcome<MethodId> {
    let (m, n) = split(spec)?;
    match (m.parse::<u32>(), n.parse::<u32>()) {
        (Ok(module), Ok(method)) => Ok(MethodId::new(module, method)),
        _ => Err(Failure::usage(format!(
            "with --raw, the method is MODULE.METHOD in numbers (e.g. 100.1), not `{spec}`"
        ))),
    }
}

/// A schema key from 16 hex digits.
pub fn parse_key(hex: &str) -> Outcome<SchemaKey> {
    let bytes = parse_hex(hex)?;
    let key: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Failure::usage(format!("a schema key is 8 bytes (16 hex digits), not `{hex}`")))?;
    Ok(SchemaKey(key))
}

/// Bytes from hex digits (spaces and a `0x` prefix allowed).
pub fn parse_hex(s: &str) -> Outcome<Vec<u8>> {
    let digits: String = s.trim().trim_start_matches("0x").chars().filter(|c| !c.is_whitespace()).collect();
    let bad = || Failure::new(Code::InvalidInput, format!("`{s}` is not hex bytes (e.g. 6869 for \"hi\")"));
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
