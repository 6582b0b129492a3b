//! Values of types known only by their schema: what a tool needs to call a method it has never
//! seen, from the schema introspection returned (SPEC.md Appendix B). [`encode`] writes a
//! [`Value`] in postcard's encoding as the schema describes it; [`decode`] reads one back.
//! (Layer 0.)

use postcard_schema::schema::owned::{OwnedDataModelType as T, OwnedDataModelVariant as V, OwnedNamedType};

/// A value of some schema'd type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `()`, a unit struct, or the data of a unit variant.
    Unit,
    /// A `bool`.
    Bool(bool),
    /// Any integer.
    Int(i128),
    /// `f32` or `f64`.
    Float(f64),
    /// A `char` or a string.
    Str(String),
    /// A byte array.
    Bytes(Vec<u8>),
    /// An `Option`.
    Option(Option<Box<Value>>),
    /// A sequence, a tuple, a tuple struct (fields in order), or an array.
    Seq(Vec<Value>),
    /// A map.
    Map(Vec<(Value, Value)>),
    /// A struct, fields by name (in any order).
    Struct(Vec<(String, Value)>),
    /// An enum variant by name, with its data ([`Value::Unit`] for a unit variant).
    Variant(String, Box<Value>),
}

/// Why a value does not fit a schema, or bytes do not decode as one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynError(pub String);

impl core::fmt::Display for DynError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DynError {}

fn err<X>(what: impl Into<String>) -> Result<X, DynError> {
    Err(DynError(what.into()))
}

fn varint(mut v: u128, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

/// `value` in postcard's encoding, as `schema` describes it.
pub fn encode(schema: &OwnedNamedType, value: &Value) -> Result<Vec<u8>, DynError> {
    let mut out = Vec::new();
    enc(&schema.ty, value, &mut out)?;
    Ok(out)
}

fn int(v: &Value, lo: i128, hi: i128, ty: &str) -> Result<i128, DynError> {
    match v {
        Value::Int(i) if (lo..=hi).contains(i) => Ok(*i),
        other => err(format!("{other:?} is not a {ty}")),
    }
}

fn enc(ty: &T, v: &Value, out: &mut Vec<u8>) -> Result<(), DynError> {
    match ty {
        T::Bool => match v {
            Value::Bool(b) => out.push(u8::from(*b)),
            other => return err(format!("{other:?} is not a bool")),
        },
        T::U8 => out.push(int(v, 0, 255, "u8")? as u8),
        T::I8 => out.push(int(v, -128, 127, "i8")? as i8 as u8),
        T::U16 => varint(int(v, 0, u16::MAX.into(), "u16")? as u128, out),
        T::U32 => varint(int(v, 0, u32::MAX.into(), "u32")? as u128, out),
        T::U64 | T::Usize => varint(int(v, 0, u64::MAX.into(), "u64")? as u128, out),
        T::U128 => varint(int(v, 0, i128::MAX, "u128")? as u128, out),
        T::I16 => varint(zigzag(int(v, i16::MIN.into(), i16::MAX.into(), "i16")?), out),
        T::I32 => varint(zigzag(int(v, i32::MIN.into(), i32::MAX.into(), "i32")?), out),
        T::I64 | T::Isize => varint(zigzag(int(v, i64::MIN.into(), i64::MAX.into(), "i64")?), out),
        T::I128 => varint(zigzag(int(v, i128::MIN, i128::MAX, "i128")?), out),
        T::F32 => match v {
            Value::Float(f) => out.extend_from_slice(&(*f as f32).to_le_bytes()),
            other => return err(format!("{other:?} is not an f32")),
        },
        T::F64 => match v {
            Value::Float(f) => out.extend_from_slice(&f.to_le_bytes()),
            other => return err(format!("{other:?} is not an f64")),
        },
        T::Char | T::String => match v {
            Value::Str(s) => {
                varint(s.len() as u128, out);
                out.extend_from_slice(s.as_bytes());
            }
            other => return err(format!("{other:?} is not a string")),
        },
        T::ByteArray => match v {
            Value::Bytes(b) => {
                varint(b.len() as u128, out);
                out.extend_from_slice(b);
            }
            other => return err(format!("{other:?} is not bytes")),
        },
        T::Option(inner) => match v {
            Value::Option(None) => out.push(0),
            Value::Option(Some(x)) => {
                out.push(1);
                enc(&inner.ty, x, out)?;
            }
            other => return err(format!("{other:?} is not an option")),
        },
        T::Unit | T::UnitStruct => {}
        T::NewtypeStruct(inner) => enc(&inner.ty, v, out)?,
        T::Seq(inner) => match v {
            Value::Seq(xs) => {
                varint(xs.len() as u128, out);
                for x in xs {
                    enc(&inner.ty, x, out)?;
                }
            }
            other => return err(format!("{other:?} is not a sequence")),
        },
        T::Tuple(items) | T::TupleStruct(items) => match v {
            Value::Seq(xs) if xs.len() == items.len() => {
                for (t, x) in items.iter().zip(xs) {
                    enc(&t.ty, x, out)?;
                }
            }
            other => return err(format!("{other:?} is not a tuple of {}", items.len())),
        },
        T::Map { key, val } => match v {
            Value::Map(kv) => {
                varint(kv.len() as u128, out);
                for (k, x) in kv {
                    enc(&key.ty, k, out)?;
                    enc(&val.ty, x, out)?;
                }
            }
            other => return err(format!("{other:?} is not a map")),
        },
        T::Struct(fields) => match v {
            Value::Struct(given) => {
                for f in fields {
                    let Some((_, x)) = given.iter().find(|(n, _)| *n == f.name) else {
                        return err(format!("field `{}` is missing", f.name));
                    };
                    enc(&f.ty.ty, x, out)?;
                }
            }
            other => return err(format!("{other:?} is not a struct")),
        },
        T::Enum(variants) => match v {
            Value::Variant(name, data) => {
                let Some(i) = variants.iter().position(|x| x.name == *name) else {
                    return err(format!("no variant `{name}`"));
                };
                varint(i as u128, out);
                match &variants[i].ty {
                    V::UnitVariant => {}
                    V::NewtypeVariant(t) => enc(&t.ty, data, out)?,
                    V::TupleVariant(ts) => enc(&T::Tuple(ts.clone()), data, out)?,
                    V::StructVariant(fs) => enc(&T::Struct(fs.clone()), data, out)?,
                }
            }
            other => return err(format!("{other:?} is not an enum variant")),
        },
        T::Schema => return err("values of schemas are not supported"),
    }
    Ok(())
}

/// Most values [`decode`] builds beyond one per input byte: values of zero-sized types (`()`,
/// unit structs) take no bytes, so a sequence of them could otherwise claim any length.
pub const ZERO_SIZED_BUDGET: usize = 65_536;

/// Reads a value of `schema` from `bytes` (all of them). The bytes may come from anyone: the
/// work and memory are bounded by their length (at most one value per byte, plus
/// [`ZERO_SIZED_BUDGET`]).
pub fn decode(schema: &OwnedNamedType, bytes: &[u8]) -> Result<Value, DynError> {
    let mut r = bytes;
    let mut budget = bytes.len().saturating_add(ZERO_SIZED_BUDGET);
    let v = dec(&schema.ty, &mut r, &mut budget)?;
    if !r.is_empty() {
        return err(format!("{} bytes left after the value", r.len()));
    }
    Ok(v)
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Result<&'a [u8], DynError> {
    if r.len() < n {
        return err("the bytes end inside the value");
    }
    let (a, b) = r.split_at(n);
    *r = b;
    Ok(a)
}

fn get_varint(r: &mut &[u8]) -> Result<u128, DynError> {
    let mut v: u128 = 0;
    for shift in (0..=126).step_by(7) {
        let b = take(r, 1)?[0];
        v |= u128::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    err("a varint is too long")
}

fn unzig(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

fn len(r: &mut &[u8]) -> Result<usize, DynError> {
    let n = get_varint(r)?;
    // Every element takes at least one byte, except units: a length can never be trusted
    // beyond what remains, so cap what is reserved.
    usize::try_from(n).map_err(|_| DynError("length out of range".into()))
}

fn dec(ty: &T, r: &mut &[u8], budget: &mut usize) -> Result<Value, DynError> {
    *budget = match budget.checked_sub(1) {
        Some(b) => b,
        None => return err("the value holds more elements than its bytes can (a sequence of empty values?)"),
    };
    Ok(match ty {
        T::Bool => match take(r, 1)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return err(format!("{b} is not a bool")),
        },
        T::U8 => Value::Int(take(r, 1)?[0].into()),
        T::I8 => Value::Int((take(r, 1)?[0] as i8).into()),
        T::U16 | T::U32 | T::U64 | T::Usize | T::U128 => Value::Int(get_varint(r)? as i128),
        T::I16 | T::I32 | T::I64 | T::Isize | T::I128 => Value::Int(unzig(get_varint(r)?)),
        T::F32 => Value::Float(f32::from_le_bytes(take(r, 4)?.try_into().unwrap_or_default()).into()),
        T::F64 => Value::Float(f64::from_le_bytes(take(r, 8)?.try_into().unwrap_or_default())),
        T::Char | T::String => {
            let n = len(r)?;
            let b = take(r, n)?;
            Value::Str(String::from_utf8(b.to_vec()).map_err(|_| DynError("a string is not UTF-8".into()))?)
        }
        T::ByteArray => {
            let n = len(r)?;
            Value::Bytes(take(r, n)?.to_vec())
        }
        T::Option(inner) => match take(r, 1)?[0] {
            0 => Value::Option(None),
            1 => Value::Option(Some(Box::new(dec(&inner.ty, r, budget)?))),
            b => return err(format!("{b} is not an option tag")),
        },
        T::Unit | T::UnitStruct => Value::Unit,
        T::NewtypeStruct(inner) => dec(&inner.ty, r, budget)?,
        T::Seq(inner) => {
            let n = len(r)?;
            let mut xs = Vec::with_capacity(n.min(r.len()));
            for _ in 0..n {
                xs.push(dec(&inner.ty, r, budget)?);
            }
            Value::Seq(xs)
        }
        T::Tuple(items) | T::TupleStruct(items) => {
            Value::Seq(items.iter().map(|t| dec(&t.ty, r, budget)).collect::<Result<_, _>>()?)
        }
        T::Map { key, val } => {
            let n = len(r)?;
            let mut kv = Vec::with_capacity(n.min(r.len()));
            for _ in 0..n {
                kv.push((dec(&key.ty, r, budget)?, dec(&val.ty, r, budget)?));
            }
            Value::Map(kv)
        }
        T::Struct(fields) => Value::Struct(
            fields
                .iter()
                .map(|f| Ok((f.name.clone(), dec(&f.ty.ty, r, budget)?)))
                .collect::<Result<_, _>>()?,
        ),
        T::Enum(variants) => {
            let i = usize::try_from(get_varint(r)?).unwrap_or(usize::MAX);
            let Some(v) = variants.get(i) else { return err(format!("no variant {i}")) };
            let data = match &v.ty {
                V::UnitVariant => Value::Unit,
                V::NewtypeVariant(t) => dec(&t.ty, r, budget)?,
                V::TupleVariant(ts) => dec(&T::Tuple(ts.clone()), r, budget)?,
                V::StructVariant(fs) => dec(&T::Struct(fs.clone()), r, budget)?,
            };
            Value::Variant(v.name.clone(), Box::new(data))
        }
        T::Schema => return err("values of schemas are not supported"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use postcard_schema::Schema;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
    enum Shape {
        Dot,
        Circle(u32),
        Rect { w: i16, h: i16 },
    }

    #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
    struct Doc {
        id: u64,
        delta: i32,
        name: String,
        tags: Vec<u8>,
        shape: Shape,
        parent: Option<u16>,
        pair: (bool, f32),
    }

    #[test]
    fn values_encode_exactly_as_postcard_does_and_decode_back() {
        let doc = Doc {
            id: 300,
            delta: -5,
            name: "a".into(),
            tags: vec![1, 2],
            shape: Shape::Rect { w: -1, h: 2 },
            parent: Some(9),
            pair: (true, 1.5),
        };
        let schema = OwnedNamedType::from(Doc::SCHEMA);
        let v = Value::Struct(vec![
            ("name".into(), Value::Str("a".into())),
            ("id".into(), Value::Int(300)),
            ("delta".into(), Value::Int(-5)),
            ("tags".into(), Value::Seq(vec![Value::Int(1), Value::Int(2)])),
            (
                "shape".into(),
                Value::Variant(
                    "Rect".into(),
                    Box::new(Value::Struct(vec![("w".into(), Value::Int(-1)), ("h".into(), Value::Int(2))])),
                ),
            ),
            ("parent".into(), Value::Option(Some(Box::new(Value::Int(9))))),
            ("pair".into(), Value::Seq(vec![Value::Bool(true), Value::Float(1.5)])),
        ]);
        let bytes = encode(&schema, &v).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&doc).unwrap());
        let back = decode(&schema, &bytes).unwrap();
        assert_eq!(encode(&schema, &back).unwrap(), bytes);
        assert!(encode(&schema, &Value::Struct(vec![])).unwrap_err().0.contains("missing"));
        assert!(decode(&schema, &bytes[..3]).is_err());
        let unit = OwnedNamedType::from(Shape::SCHEMA);
        assert_eq!(encode(&unit, &Value::Variant("Dot".into(), Box::new(Value::Unit))).unwrap(), [0]);
    }

    #[test]
    fn a_sequence_of_empty_values_cannot_claim_any_length() {
        let units = OwnedNamedType::from(<Vec<()>>::SCHEMA);
        // 2^60 units in 9 bytes: refused at once, not built.
        let e = decode(&units, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]).unwrap_err();
        assert!(e.0.contains("more elements than its bytes can"), "{e}");
        // A plausible number of them still decodes.
        let few = postcard::to_allocvec(&vec![(); 1000]).unwrap();
        assert_eq!(decode(&units, &few).unwrap(), Value::Seq(vec![Value::Unit; 1000]));
    }
}
