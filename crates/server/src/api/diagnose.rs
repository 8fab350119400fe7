//! Precise answers to requests poem-openapi refused while parsing. Its errors name the
//! type that failed but not always the field (a missing field, a wrong type, a value
//! outside an enum), so the refused body is checked again, here, against the operation's
//! schema in the served document: the answer names the first field that breaks a rule
//! (`items[3].max_clicks`) and the rule. Only refused requests come here.

use serde_json::Value;

/// A request value that breaks a rule of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// 400 for a body that is not JSON at all, 422 otherwise.
    pub status: u16,
    /// Machine-readable code (`invalid_json`, `invalid_type`, `missing_field`,
    /// `unknown_field`, `invalid_field`).
    pub code: &'static str,
    /// The offending field, as a path into the body (`items[3].max_clicks`).
    pub field: Option<String>,
    /// Why, for humans.
    pub reason: String,
}

fn violation(code: &'static str, field: &str, reason: impl Into<String>) -> Violation {
    Violation {
        status: 422,
        code,
        field: (!field.is_empty()).then(|| field.to_string()),
        reason: reason.into(),
    }
}

/// The JSON body schema of `method` on `path` (a template of the document).
fn body_schema<'a>(doc: &'a Value, path: &str, method: &str) -> Option<&'a Value> {
    doc.get("paths")?
        .get(path)?
        .get(method.to_ascii_lowercase())?
        .get("requestBody")?
        .get("content")?
        .as_object()?
        .iter()
        .find(|(media, _)| media.starts_with("application/json"))?
        .1
        .get("schema")
}

/// What is wrong with `body` for `method` on `path`; `None` when the document's rules
/// find nothing (the caller then answers with poem's own reason).
pub fn body(doc: &Value, path: &str, method: &str, body: &[u8]) -> Option<Violation> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(Violation {
                status: 400,
                code: "invalid_json",
                field: None,
                reason: format!(
                    "the body is not valid JSON ({} at line {}, column {})",
                    match e.classify() {
                        serde_json::error::Category::Eof => "it ends early",
                        serde_json::error::Category::Syntax => "syntax error",
                        serde_json::error::Category::Data => "unusable value",
                        serde_json::error::Category::Io => "unreadable",
                    },
                    e.line(),
                    e.column()
                ),
            });
        }
    };
    let schema = body_schema(doc, path, method)?;
    walk(doc, schema, &value, "")
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .and_then(|name| doc.get("components")?.get("schemas")?.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

/// A `oneOf` of objects told apart by their `type` (redirect rule conditions): the
/// branch of the value's `type`, or a violation naming `type`.
fn one_of(doc: &Value, branches: &[Value], value: &Value, field: &str) -> Option<Violation> {
    let Some(object) = value.as_object() else {
        return Some(violation(
            "invalid_type",
            field,
            format!("must be an object, not {}", type_name(value)),
        ));
    };
    let kinds: Vec<&Value> = branches
        .iter()
        .filter_map(|b| {
            resolve(doc, b)
                .get("properties")?
                .get("type")?
                .get("enum")?
                .get(0)
        })
        .collect();
    let kind = object.get("type");
    match branches.iter().zip(&kinds).find(|(_, k)| Some(**k) == kind) {
        Some((branch, _)) => walk(doc, branch, value, field),
        None => {
            let listed: Vec<&str> = kinds.iter().filter_map(|k| k.as_str()).collect();
            Some(violation(
                "invalid_field",
                &join(field, "type"),
                format!("must be one of {}", listed.join(", ")),
            ))
        }
    }
}

/// The first rule of `schema` that `value` (at `field`) breaks.
pub fn walk(doc: &Value, schema: &Value, value: &Value, field: &str) -> Option<Violation> {
    let schema = resolve(doc, schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return None;
        }
        return all.iter().find_map(|s| walk(doc, s, value, field));
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        return one_of(doc, branches, value, field);
    }
    if value.is_null() {
        return (schema.get("nullable") != Some(&Value::Bool(true)))
            .then(|| violation("invalid_type", field, "must not be null"));
    }
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let type_ok = match ty {
        "string" => value.is_string(),
        "integer" => value
            .as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.is_finite()),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !type_ok {
        let expected = match ty {
            "integer" => "an integer",
            "array" => "an array",
            "object" => "an object",
            "boolean" => "a boolean",
            "number" => "a number",
            _ => "a string",
        };
        return Some(violation(
            "invalid_type",
            field,
            format!("must be {expected}, not {}", type_name(value)),
        ));
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let listed: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
            .collect();
        return Some(violation(
            "invalid_field",
            field,
            format!("must be one of {}", listed.join(", ")),
        ));
    }
    let number = |key: &str| schema.get(key).and_then(Value::as_f64);
    let count = |key: &str| schema.get(key).and_then(Value::as_u64);
    match value {
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(min) = count("minLength")
                && chars < min
            {
                return Some(violation(
                    "invalid_field",
                    field,
                    format!("must be at least {min} characters long"),
                ));
            }
            if let Some(max) = count("maxLength")
                && chars > max
            {
                return Some(violation(
                    "invalid_field",
                    field,
                    format!("must be at most {max} characters long"),
                ));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s))
            {
                return Some(violation(
                    "invalid_field",
                    field,
                    format!("must match {pattern}"),
                ));
            }
            match schema.get("format").and_then(Value::as_str) {
                Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                    return Some(violation(
                        "invalid_field",
                        field,
                        "must be an RFC 3339 date-time such as 2026-12-31T23:59:00Z",
                    ));
                }
                Some("uuid") if uuid::Uuid::try_parse(s).is_err() => {
                    return Some(violation("invalid_field", field, "must be a UUID"));
                }
                _ => {}
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or_default();
            if let Some(min) = number("minimum")
                && n < min
            {
                return Some(violation(
                    "invalid_field",
                    field,
                    format!("must be at least {min}"),
                ));
            }
            if let Some(max) = number("maximum")
                && n > max
            {
                return Some(violation(
                    "invalid_field",
                    field,
                    format!("must be at most {max}"),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(min) = count("minItems")
                && (items.len() as u64) < min
            {
                return Some(violation(
                    "invalid_field",
                    field,
                    format!("needs at least {min} items"),
                ));
            }
            if let Some(max) = count("maxItems")
                && items.len() as u64 > max
            {
                return Some(violation(
                    "invalid_field",
                    field,
                    format!("may have at most {max} items"),
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    if let Some(v) = walk(doc, item_schema, item, &format!("{field}[{i}]")) {
                        return Some(v);
                    }
                }
            }
        }
        Value::Object(object) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        return Some(violation(
                            "missing_field",
                            &join(field, name),
                            "is required",
                        ));
                    }
                }
            }
            for (key, item) in object {
                match properties.and_then(|p| p.get(key)) {
                    Some(property) => {
                        if let Some(v) = walk(doc, property, item, &join(field, key)) {
                            return Some(v);
                        }
                    }
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Some(violation(
                            "unknown_field",
                            &join(field, &hoplink::excerpt(key)),
                            "is not a field of this request",
                        ));
                    }
                    None => {}
                }
            }
        }
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "paths": {"/things": {"post": {"requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Batch"}}}}}}},
            "components": {"schemas": {
                "Batch": {"type": "object", "required": ["items"], "additionalProperties": false,
                    "properties": {"items": {"type": "array", "maxItems": 2,
                        "items": {"$ref": "#/components/schemas/Thing"}}}},
                "Thing": {"type": "object", "required": ["name"], "additionalProperties": false,
                    "properties": {
                        "name": {"type": "string", "minLength": 3, "pattern": "^[a-z]+$"},
                        "count": {"type": "integer", "minimum": 1, "maximum": 10, "nullable": true},
                        "kind": {"type": "integer", "enum": [301, 302]},
                        "at": {"type": "string", "format": "date-time"}}}}}
        })
    }

    fn check(body: Value) -> Option<(String, &'static str, u16)> {
        super::body(&doc(), "/things", "POST", body.to_string().as_bytes())
            .map(|v| (v.field.unwrap_or_default(), v.code, v.status))
    }

    #[test]
    fn names_the_first_broken_rule_with_its_path() {
        assert_eq!(check(json!({"items": [{"name": "abc"}]})), None);
        assert_eq!(
            check(json!({"items": [{"name": "abc"}, {"name": 12345}]})),
            Some(("items[1].name".into(), "invalid_type", 422))
        );
        assert_eq!(
            check(json!({"items": [{"name": "abc", "count": -1}]})),
            Some(("items[0].count".into(), "invalid_field", 422))
        );
        assert_eq!(
            check(json!({"items": [{"name": "abc", "count": null}]})),
            None
        );
        assert_eq!(
            check(json!({"items": [{"name": "abc", "kind": 0}]})),
            Some(("items[0].kind".into(), "invalid_field", 422))
        );
        assert_eq!(
            check(json!({"items": [{"name": "ABC"}]})),
            Some(("items[0].name".into(), "invalid_field", 422))
        );
        assert_eq!(
            check(json!({"items": [{"name": "abc", "at": "yesterday"}]})),
            Some(("items[0].at".into(), "invalid_field", 422))
        );
        assert_eq!(
            check(json!({"items": [{}]})),
            Some(("items[0].name".into(), "missing_field", 422))
        );
        assert_eq!(
            check(json!({"items": [], "extra": 1})),
            Some(("extra".into(), "unknown_field", 422))
        );
        assert_eq!(
            check(json!({"items": [{"name": "abc"}, {"name": "abc"}, {"name": "abc"}]})),
            Some(("items".into(), "invalid_field", 422))
        );
        assert_eq!(check(json!([1])).map(|c| c.1), Some("invalid_type"));
        let broken = super::body(&doc(), "/things", "POST", b"{\"items\": [");
        assert_eq!(
            broken.map(|v| (v.status, v.code)),
            Some((400, "invalid_json"))
        );
    }
}
