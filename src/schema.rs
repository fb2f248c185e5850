//! `hostprint schema`: the JSON Schema (draft 2020-12) of `--format json`, for consumers that validate
//! what they ingest or generate types from it.
//!
//! schemars derives it from the types serde serializes (`contract = Serialize`: an `Option` is a
//! required key that may be `null`; only `skip_serializing_if` fields are optional), so it cannot
//! drift from the output. Added afterwards: every object is closed (`additionalProperties: false`)
//! and `schema_version` is pinned to the version this binary writes.

use schemars::generate::{Contract, SchemaSettings};
use serde_json::Value;

use crate::profile::{Profile, SCHEMA_VERSION};

/// The schema as a JSON value.
pub fn schema() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.contract = Contract::Serialize)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Profile>().to_value();
    close_objects(&mut schema);
    if let Some(v) = schema.pointer_mut("/properties/schema_version") {
        *v = serde_json::json!({ "const": SCHEMA_VERSION });
    }
    schema
}

/// The schema, pretty-printed, as `hostprint schema` prints it.
pub fn render() -> String {
    let mut out = serde_json::to_string_pretty(&schema()).expect("a schema is always serializable");
    out.push('\n');
    out
}

/// Sets `additionalProperties: false` on every object schema that lists its properties.
fn close_objects(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}
