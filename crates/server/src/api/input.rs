//! Strict input types: poem-openapi's `String` accepts a JSON number or boolean as text
//! (so `"custom_alias": 12345` would become an alias), and its integers refuse numbers
//! past their type with a parse error instead of the range error the document states.
//! [`Text`] takes JSON strings only; [`Int`] takes any JSON integer, saturating at the
//! bounds of `i64`, so that the field's `minimum` / `maximum` validators decide, and
//! the answer is a 422 naming the field.

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;
use std::borrow::Cow;

/// A JSON string, and only a string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub String);

impl Text {
    /// The text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.to_string())
    }
}

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(Text(s)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ParseFromParameter for Text {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Text(value.to_string()))
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// A JSON integer (or an integer-valued number such as `1e3`), saturated to `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Int(pub i64);

impl num_traits::AsPrimitive<f64> for Int {
    fn as_(self) -> f64 {
        self.0 as f64
    }
}

impl Type for Int {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "integer(int64)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("integer", "int64")))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

fn saturate(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let f = n.as_f64()?;
    (f.is_finite() && f.fract() == 0.0).then(|| f.clamp(i64::MIN as f64, i64::MAX as f64) as i64)
}

impl ParseFromJSON for Int {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::Number(n) => saturate(&n)
                .map(Int)
                .ok_or_else(|| ParseError::custom("not a whole number")),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ParseFromParameter for Int {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::custom("not a whole number"));
        }
        Ok(Int(value.parse::<i64>().unwrap_or(
            if value.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            },
        )))
    }
}

impl ToJSON for Int {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0))
    }
}

/// A redirect status: one of 301, 302, 307, 308 (an integer enum in the document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectStatus(pub hoplink::RedirectType);

impl Type for RedirectStatus {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "integer(redirect_status)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("integer");
        schema.enum_items = [301, 302, 307, 308].into_iter().map(Value::from).collect();
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromJSON for RedirectStatus {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.unwrap_or_default();
        value
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .and_then(|n| hoplink::RedirectType::try_from(n).ok())
            .map(RedirectStatus)
            .ok_or_else(|| ParseError::custom("not one of 301, 302, 307, 308"))
    }
}

impl ToJSON for RedirectStatus {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_takes_strings_only() {
        assert_eq!(
            Text::parse_from_json(Some(json!("a"))).unwrap(),
            Text("a".into())
        );
        for bad in [json!(12345), json!(true), json!(null), json!(["a"])] {
            assert!(Text::parse_from_json(Some(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn int_saturates_whole_numbers_and_refuses_the_rest() {
        let parse = |v: Value| Int::parse_from_json(Some(v)).map(|i| i.0);
        assert_eq!(parse(json!(-1)).unwrap(), -1);
        assert_eq!(parse(json!(18446744073709551615u64)).unwrap(), i64::MAX);
        assert_eq!(parse(json!(1e30)).unwrap(), i64::MAX);
        assert_eq!(parse(json!(-1e30)).unwrap(), i64::MIN);
        assert_eq!(parse(json!(1e3)).unwrap(), 1000);
        for bad in [json!(1.5), json!("1"), json!(null), json!(true)] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(
            RedirectStatus::parse_from_json(Some(json!(307)))
                .unwrap()
                .0
                .status(),
            307
        );
        for bad in [json!(0), json!(300), json!("302"), json!(302.5)] {
            assert!(
                RedirectStatus::parse_from_json(Some(bad.clone())).is_err(),
                "{bad}"
            );
        }
        let param = |s: &str| Int::parse_from_parameter(s).map(|i| i.0);
        assert_eq!(param("30").unwrap(), 30);
        assert_eq!(param("-1").unwrap(), -1);
        assert_eq!(param("99999999999999999999999").unwrap(), i64::MAX);
        for bad in ["", "-", "1.5", "abc", "1e3", " 1"] {
            assert!(param(bad).is_err(), "{bad:?}");
        }
    }
}
