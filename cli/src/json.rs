//! JSON to and from [`Value`]s of a schema learned by introspection (SPEC.md Appendix B).
//!
//! The mapping is serde_json's for the serde data model, so that what a user types reads like
//! what a Rust program would print: a struct is an object of its fields, a tuple or sequence an
//! array, an `Option` `null` or its value, `()` and unit structs `null`, a unit variant its name
//! as a string and any other variant `{"Name": data}`, a byte array an array of numbers, a map
//! an object (keys that are strings or integers) or an array of `[key, value]` pairs. Integers
//! are checked against their type's range here, so an error names the field
//! (`.target.x: 300 does not fit a u8`); a 128-bit integer may also be written as a string.

use postcard_schema::schema::owned::{
    OwnedDataModelType as T, OwnedDataModelVariant as V, OwnedNamedType, OwnedNamedValue,
};
use serde_json::{Map, Number, Value as Json};
use tandem_std::dynamic::Value;

/// A JSON value that does not fit the schema: where (`.a[2].b`, empty for the whole value) and
/// why.
#[derive(Debug)]
pub struct JsonError {
    /// The path of the offending part.
    pub path: String,
    /// What is wrong with it.
    pub what: String,
}

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.what)
        } else {
            write!(f, "at `{}`: {}", self.path, self.what)
        }
    }
}

fn fail<X>(path: &str, what: impl Into<String>) -> Result<X, JsonError> {
    Err(JsonError { path: path.to_string(), what: what.into() })
}

fn kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The range of an integer type, and its name.
fn int_range(ty: &T) -> Option<(i128, i128, &'static str)> {
    Some(match ty {
        T::U8 => (0, u8::MAX.into(), "u8"),
        T::U16 => (0, u16::MAX.into(), "u16"),
        T::U32 => (0, u32::MAX.into(), "u32"),
        T::U64 => (0, u64::MAX.into(), "u64"),
        T::Usize => (0, u64::MAX.into(), "usize"),
        // `Value::Int` is an i128: u128 values above i128::MAX cannot be represented.
        T::U128 => (0, i128::MAX, "u128"),
        T::I8 => (i8::MIN.into(), i8::MAX.into(), "i8"),
        T::I16 => (i16::MIN.into(), i16::MAX.into(), "i16"),
        T::I32 => (i32::MIN.into(), i32::MAX.into(), "i32"),
        T::I64 => (i64::MIN.into(), i64::MAX.into(), "i64"),
        T::Isize => (i64::MIN.into(), i64::MAX.into(), "isize"),
        T::I128 => (i128::MIN, i128::MAX, "i128"),
        _ => return None,
    })
}

fn int(j: &Json, path: &str, (lo, hi, name): (i128, i128, &str)) -> Result<Value, JsonError> {
    let v: Option<i128> = match j {
        Json::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Json::String(s) => s.trim().parse().ok(),
        other => return fail(path, format!("expected an integer ({name}), found {}", kind(other))),
    };
    match v {
        Some(v) if (lo..=hi).contains(&v) => Ok(Value::Int(v)),
        Some(v) => fail(path, format!("{v} does not fit a {name} ({lo}..={hi})")),
        None => fail(path, format!("expected an integer ({name}), found {j}")),
    }
}

fn field_path(path: &str, name: &str) -> String {
    format!("{path}.{name}")
}

fn index_path(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `j` as a value of `schema`.
pub fn from_json(schema: &OwnedNamedType, j: &Json) -> Result<Value, JsonError> {
    conv(&schema.ty, j, "")
}

fn array<'a>(j: &'a Json, path: &str, what: &str) -> Result<&'a Vec<Json>, JsonError> {
    match j {
        Json::Array(xs) => Ok(xs),
        other => fail(path, format!("expected {what}, found {}", kind(other))),
    }
}

fn tuple(items: &[OwnedNamedType], j: &Json, path: &str) -> Result<Value, JsonError> {
    let what = format!("an array of {} elements", items.len());
    let xs = array(j, path, &what)?;
    if xs.len() != items.len() {
        return fail(path, format!("expected {what}, found {}", xs.len()));
    }
    let vs = items.iter().zip(xs).enumerate().map(|(i, (t, x))| conv(&t.ty, x, &index_path(path, i)));
    Ok(Value::Seq(vs.collect::<Result<_, _>>()?))
}

fn fields(fs: &[OwnedNamedValue], j: &Json, path: &str) -> Result<Value, JsonError> {
    let names = || fs.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
    let Json::Object(obj) = j else {
        return fail(path, format!("expected an object with the fields {}, found {}", names(), kind(j)));
    };
    if let Some(extra) = obj.keys().find(|k| !fs.iter().any(|f| f.name == **k)) {
        return fail(&field_path(path, extra), format!("no such field (the fields are: {})", names()));
    }
    let mut out = Vec::with_capacity(fs.len());
    for f in fs {
        let p = field_path(path, &f.name);
        match obj.get(&f.name) {
            Some(x) => out.push((f.name.clone(), conv(&f.ty.ty, x, &p)?)),
            // A missing optional field is `None`, as serde does for `Option` fields.
            None if matches!(f.ty.ty, T::Option(_)) => out.push((f.name.clone(), Value::Option(None))),
            None => return fail(&p, "missing field"),
        }
    }
    Ok(Value::Struct(out))
}

fn map_key(ty: &T, k: &str, path: &str) -> Result<Value, JsonError> {
    match ty {
        T::String | T::Char => Ok(Value::Str(k.to_string())),
        T::NewtypeStruct(inner) => map_key(&inner.ty, k, path),
        t => match int_range(t) {
            Some(r) => int(&Json::String(k.to_string()), &field_path(path, k), r),
            None => {
                fail(path, "this map's keys are not strings or integers: give an array of [key, value] pairs")
            }
        },
    }
}

fn conv(ty: &T, j: &Json, path: &str) -> Result<Value, JsonError> {
    if let Some(r) = int_range(ty) {
        return int(j, path, r);
    }
    Ok(match ty {
        T::Bool => match j {
            Json::Bool(b) => Value::Bool(*b),
            other => return fail(path, format!("expected a boolean, found {}", kind(other))),
        },
        T::F32 | T::F64 => match j {
            Json::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if matches!(ty, T::F32) && f.is_finite() && f.abs() > f64::from(f32::MAX) {
                    return fail(path, format!("{n} does not fit an f32"));
                }
                Value::Float(f)
            }
            Json::String(s) if matches!(s.as_str(), "NaN" | "inf" | "-inf") => {
                Value::Float(s.parse().unwrap_or(f64::NAN))
            }
            other => return fail(path, format!("expected a number, found {}", kind(other))),
        },
        T::Char => match j {
            Json::String(s) if s.chars().count() == 1 => Value::Str(s.clone()),
            other => return fail(path, format!("expected a one-character string, found {other}")),
        },
        T::String => match j {
            Json::String(s) => Value::Str(s.clone()),
            other => return fail(path, format!("expected a string, found {}", kind(other))),
        },
        T::ByteArray => {
            let xs = array(j, path, "an array of bytes (numbers 0..=255)")?;
            let bytes = xs.iter().enumerate().map(|(i, x)| match x.as_u64() {
                Some(b) if b <= 255 => Ok(b as u8),
                _ => fail(&index_path(path, i), format!("expected a byte (0..=255), found {x}")),
            });
            Value::Bytes(bytes.collect::<Result<_, _>>()?)
        }
        T::Option(inner) => match j {
            Json::Null => Value::Option(None),
            x => Value::Option(Some(Box::new(conv(&inner.ty, x, path)?))),
        },
        T::Unit | T::UnitStruct => match j {
            Json::Null => Value::Unit,
            Json::Array(xs) if xs.is_empty() => Value::Unit,
            other => return fail(path, format!("expected null, found {}", kind(other))),
        },
        T::NewtypeStruct(inner) => conv(&inner.ty, j, path)?,
        T::Seq(inner) => {
            let xs = array(j, path, "an array")?;
            let vs = xs.iter().enumerate().map(|(i, x)| conv(&inner.ty, x, &index_path(path, i)));
            Value::Seq(vs.collect::<Result<_, _>>()?)
        }
        T::Tuple(items) | T::TupleStruct(items) => tuple(items, j, path)?,
        T::Map { key, val } => match j {
            Json::Object(obj) => {
                let kv = obj
                    .iter()
                    .map(|(k, x)| Ok((map_key(&key.ty, k, path)?, conv(&val.ty, x, &field_path(path, k))?)));
                Value::Map(kv.collect::<Result<_, _>>()?)
            }
            Json::Array(pairs) => {
                let kv = pairs.iter().enumerate().map(|(i, p)| {
                    let p_path = index_path(path, i);
                    match p {
                        Json::Array(kv) if kv.len() == 2 => Ok((
                            conv(&key.ty, &kv[0], &index_path(&p_path, 0))?,
                            conv(&val.ty, &kv[1], &index_path(&p_path, 1))?,
                        )),
                        other => fail(&p_path, format!("expected a [key, value] pair, found {other}")),
                    }
                });
                Value::Map(kv.collect::<Result<_, _>>()?)
            }
            other => return fail(path, format!("expected an object (a map), found {}", kind(other))),
        },
        T::Struct(fs) => fields(fs, j, path)?,
        T::Enum(variants) => variant(variants, j, path)?,
        T::Schema => return fail(path, "values of type Schema cannot be written in JSON"),
        // Integers were handled above.
        _ => return fail(path, "unsupported type"),
    })
}

fn variant(
    variants: &[postcard_schema::schema::owned::OwnedNamedVariant],
    j: &Json,
    path: &str,
) -> Result<Value, JsonError> {
    let names = || variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ");
    let (name, data) = match j {
        Json::String(s) => (s.as_str(), None),
        Json::Object(o) if o.len() == 1 => {
            let (k, v) = o.iter().next().expect("one entry");
            (k.as_str(), Some(v))
        }
        other => {
            return fail(
                path,
                format!(
                    "expected a variant (\"Name\" or {{\"Name\": data}}; one of {}), found {other}",
                    names()
                ),
            )
        }
    };
    let Some(v) = variants.iter().find(|v| v.name == name) else {
        return fail(path, format!("no variant `{name}` (the variants are: {})", names()));
    };
    let p = field_path(path, name);
    let data = match (&v.ty, data) {
        (V::UnitVariant, None | Some(Json::Null)) => Value::Unit,
        (V::UnitVariant, Some(other)) => {
            return fail(&p, format!("a unit variant takes no data, found {other}"))
        }
        (_, None) => return fail(path, format!("variant `{name}` needs data: {{\"{name}\": …}}")),
        (V::NewtypeVariant(t), Some(x)) => conv(&t.ty, x, &p)?,
        (V::TupleVariant(ts), Some(x)) => tuple(ts, x, &p)?,
        (V::StructVariant(fs), Some(x)) => fields(fs, x, &p)?,
    };
    Ok(Value::Variant(name.to_string(), Box::new(data)))
}

fn number(i: i128) -> Json {
    if let Ok(v) = i64::try_from(i) {
        Json::Number(v.into())
    } else if let Ok(v) = u64::try_from(i) {
        Json::Number(v.into())
    } else {
        Json::String(i.to_string())
    }
}

fn key_string(k: &Value) -> Option<String> {
    match k {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// `v` as JSON, in the same mapping [`from_json`] reads.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Unit => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => number(*i),
        Value::Float(f) => Number::from_f64(*f).map_or_else(|| Json::String(f.to_string()), Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::Array(b.iter().map(|x| Json::Number((*x).into())).collect()),
        Value::Option(None) => Json::Null,
        Value::Option(Some(x)) => to_json(x),
        Value::Seq(xs) => Json::Array(xs.iter().map(to_json).collect()),
        Value::Map(kv) => match kv.iter().map(|(k, _)| key_string(k)).collect::<Option<Vec<_>>>() {
            Some(keys) => Json::Object(keys.into_iter().zip(kv).map(|(k, (_, x))| (k, to_json(x))).collect()),
            None => Json::Array(kv.iter().map(|(k, x)| Json::Array(vec![to_json(k), to_json(x)])).collect()),
        },
        Value::Struct(fs) => {
            Json::Object(fs.iter().map(|(n, x)| (n.clone(), to_json(x))).collect::<Map<_, _>>())
        }
        Value::Variant(name, data) => match **data {
            Value::Unit => Json::String(name.clone()),
            ref d => Json::Object([(name.clone(), to_json(d))].into_iter().collect()),
        },
    }
}

/// A skeleton JSON value of `schema` (zeros, empty strings and arrays, `null`s, the first
/// variant): what `tandem describe` shows as an example request.
pub fn example(schema: &OwnedNamedType) -> Json {
    skeleton(&schema.ty)
}

fn skeleton(ty: &T) -> Json {
    if int_range(ty).is_some() {
        return Json::Number(0.into());
    }
    match ty {
        T::Bool => Json::Bool(false),
        T::F32 | T::F64 => Number::from_f64(0.0).map_or(Json::Null, Json::Number),
        T::Char => Json::String("a".into()),
        T::String => Json::String(String::new()),
        T::ByteArray | T::Seq(_) => Json::Array(vec![]),
        T::Option(_) | T::Unit | T::UnitStruct | T::Schema => Json::Null,
        T::NewtypeStruct(inner) => skeleton(&inner.ty),
        T::Tuple(items) | T::TupleStruct(items) => {
            Json::Array(items.iter().map(|t| skeleton(&t.ty)).collect())
        }
        T::Map { .. } => Json::Object(Map::new()),
        T::Struct(fs) => Json::Object(fs.iter().map(|f| (f.name.clone(), skeleton(&f.ty.ty))).collect()),
        T::Enum(vs) => match vs.first() {
            None => Json::Null,
            Some(v) => match &v.ty {
                V::UnitVariant => Json::String(v.name.clone()),
                V::NewtypeVariant(t) => {
                    Json::Object([(v.name.clone(), skeleton(&t.ty))].into_iter().collect())
                }
                V::TupleVariant(ts) => Json::Object(
                    [(v.name.clone(), Json::Array(ts.iter().map(|t| skeleton(&t.ty)).collect()))]
                        .into_iter()
                        .collect(),
                ),
                V::StructVariant(fs) => Json::Object(
                    [(
                        v.name.clone(),
                        Json::Object(fs.iter().map(|f| (f.name.clone(), skeleton(&f.ty.ty))).collect()),
                    )]
                    .into_iter()
                    .collect(),
                ),
            },
        },
        _ => Json::Null,
    }
}

/// `schema` as a Rust-like type: `Move { x: i32, y: i32 }`, `Option<u8>`, `Vec<String>`.
pub fn render(schema: &OwnedNamedType) -> String {
    let mut s = String::new();
    render_into(schema, &mut s);
    s
}

fn render_list(items: &[OwnedNamedType], s: &mut String) {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        render_into(t, s);
    }
}

fn render_fields(fs: &[OwnedNamedValue], s: &mut String) {
    s.push_str(" { ");
    for (i, f) in fs.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&f.name);
        s.push_str(": ");
        render_into(&f.ty, s);
    }
    s.push_str(" }");
}

fn render_into(t: &OwnedNamedType, s: &mut String) {
    if let Some((_, _, name)) = int_range(&t.ty) {
        s.push_str(name);
        return;
    }
    match &t.ty {
        T::Bool => s.push_str("bool"),
        T::F32 => s.push_str("f32"),
        T::F64 => s.push_str("f64"),
        T::Char => s.push_str("char"),
        T::String => s.push_str("String"),
        T::ByteArray => s.push_str("bytes"),
        T::Option(inner) => {
            s.push_str("Option<");
            render_into(inner, s);
            s.push('>');
        }
        T::Unit => s.push_str("()"),
        T::UnitStruct => s.push_str(&t.name),
        T::NewtypeStruct(inner) => {
            s.push_str(&t.name);
            s.push('(');
            render_into(inner, s);
            s.push(')');
        }
        T::Seq(inner) => {
            s.push_str("Vec<");
            render_into(inner, s);
            s.push('>');
        }
        T::Tuple(items) => {
            s.push('(');
            render_list(items, s);
            s.push(')');
        }
        T::TupleStruct(items) => {
            s.push_str(&t.name);
            s.push('(');
            render_list(items, s);
            s.push(')');
        }
        T::Map { key, val } => {
            s.push_str("Map<");
            render_into(key, s);
            s.push_str(", ");
            render_into(val, s);
            s.push('>');
        }
        T::Struct(fs) => {
            s.push_str(&t.name);
            render_fields(fs, s);
        }
        T::Enum(vs) => {
            s.push_str(&t.name);
            s.push_str(" { ");
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    s.push_str(" | ");
                }
                s.push_str(&v.name);
                match &v.ty {
                    V::UnitVariant => {}
                    V::NewtypeVariant(inner) => {
                        s.push('(');
                        render_into(inner, s);
                        s.push(')');
                    }
                    V::TupleVariant(items) => {
                        s.push('(');
                        render_list(items, s);
                        s.push(')');
                    }
                    V::StructVariant(fs) => render_fields(fs, s),
                }
            }
            s.push_str(" }");
        }
        T::Schema => s.push_str("Schema"),
        _ => s.push_str(&t.name),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use postcard_schema::Schema;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
    enum Shape {
        Dot,
        Circle(u32),
        Pair(i8, i8),
        Rect { w: i16, h: i16 },
    }

    #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
    struct Meters(f64);

    #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
    struct Doc {
        id: u64,
        delta: i32,
        name: String,
        initial: char,
        tags: Vec<u8>,
        shapes: Vec<Shape>,
        parent: Option<u16>,
        pair: (bool, f32),
        length: Meters,
        by_name: BTreeMap<String, u32>,
        by_id: BTreeMap<u32, String>,
        big: i128,
        nothing: (),
    }

    fn schema<S: Schema>() -> OwnedNamedType {
        OwnedNamedType::from(S::SCHEMA)
    }

    #[test]
    fn json_encodes_exactly_as_postcard_and_decodes_back_to_the_same_json() {
        let doc = Doc {
            id: u64::MAX,
            delta: -5,
            name: "arm".into(),
            initial: 'é',
            tags: vec![1, 255],
            shapes: vec![Shape::Dot, Shape::Circle(3), Shape::Pair(-1, 1), Shape::Rect { w: -2, h: 7 }],
            parent: Some(9),
            pair: (true, 1.5),
            length: Meters(2.25),
            by_name: [("a".to_string(), 1), ("b".to_string(), 2)].into_iter().collect(),
            by_id: [(7, "seven".to_string())].into_iter().collect(),
            big: -(1i128 << 100),
            nothing: (),
        };
        let j = json!({
            "id": u64::MAX, "delta": -5, "name": "arm", "initial": "é", "tags": [1, 255],
            "shapes": ["Dot", {"Circle": 3}, {"Pair": [-1, 1]}, {"Rect": {"w": -2, "h": 7}}],
            "parent": 9, "pair": [true, 1.5], "length": 2.25,
            "by_name": {"a": 1, "b": 2}, "by_id": {"7": "seven"},
            "big": (-(1i128 << 100)).to_string(), "nothing": null,
        });
        let s = schema::<Doc>();
        let v = from_json(&s, &j).unwrap();
        let bytes = tandem_std::dynamic::encode(&s, &v).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&doc).unwrap());
        assert_eq!(to_json(&tandem_std::dynamic::decode(&s, &bytes).unwrap()), j);
        // The skeleton of a type is a valid value of it.
        assert!(from_json(&s, &example(&s)).is_ok(), "{}", example(&s));
        assert_eq!(
            render(&schema::<Shape>()),
            "Shape { Dot | Circle(u32) | Pair(i8, i8) | Rect { w: i16, h: i16 } }"
        );
    }

    fn error(j: serde_json::Value) -> String {
        from_json(&schema::<Doc>(), &j).unwrap_err().to_string()
    }

    fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
        let mut j = example(&schema::<Doc>());
        j[field] = value;
        j
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(error(with("delta", json!("x"))), "at `.delta`: expected an integer (i32), found \"x\"");
        assert_eq!(error(with("tags", json!([1, 256]))), "at `.tags[1]`: 256 does not fit a u8 (0..=255)");
        let e = error(with("shapes", json!([{"Rect": {"w": 1, "h": 70000}}])));
        assert_eq!(e, "at `.shapes[0].Rect.h`: 70000 does not fit a i16 (-32768..=32767)");
        let e = error(with("shapes", json!(["Square"])));
        assert_eq!(e, "at `.shapes[0]`: no variant `Square` (the variants are: Dot, Circle, Pair, Rect)");
        assert_eq!(
            error(with("shapes", json!(["Circle"]))),
            "at `.shapes[0]`: variant `Circle` needs data: {\"Circle\": …}"
        );
        assert_eq!(
            error(with("pair", json!([true]))),
            "at `.pair`: expected an array of 2 elements, found 1"
        );
        assert_eq!(error(with("pair", json!([true, 1e300]))), "at `.pair[1]`: 1e+300 does not fit an f32");
        assert_eq!(
            error(with("by_id", json!({"x": "y"}))),
            "at `.by_id.x`: expected an integer (u32), found \"x\""
        );
        assert_eq!(error(json!([])), "expected an object with the fields id, delta, name, initial, tags, shapes, parent, pair, length, by_name, by_id, big, nothing, found an array");
        // A missing optional field is None; a missing other field is named.
        let mut j = example(&schema::<Doc>());
        j.as_object_mut().unwrap().remove("parent");
        assert!(from_json(&schema::<Doc>(), &j).is_ok());
        j.as_object_mut().unwrap().remove("name");
        assert_eq!(from_json(&schema::<Doc>(), &j).unwrap_err().to_string(), "at `.name`: missing field");
    }
}
