//! A click's visitor pseudonym, kept inline.

use crate::text::StackString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// A click's visitor pseudonym: the 32 hex digits of a keyed hash of (address, user
/// agent) under the day's key, or empty when the click had no address.
///
/// Held inline (at most [`Visitor::MAX`] bytes; longer text is cut), so carrying one
/// along a click's way (the event, the classified click, the click log) copies it
/// instead of allocating and freeing a string at each step. It reads as `&str`.
///
/// ```
/// use hoplink::records::Visitor;
/// let v = Visitor::from("9f86d081884c7d659a2feaa0c55ad015");
/// assert_eq!(v.as_str(), "9f86d081884c7d659a2feaa0c55ad015");
/// assert!(Visitor::default().is_empty());
/// assert_eq!(serde_json::to_string(&v).unwrap(), "\"9f86d081884c7d659a2feaa0c55ad015\"");
/// ```
#[derive(Clone, Copy, Default)]
pub struct Visitor(StackString<{ Visitor::MAX }>);

impl Visitor {
    /// Longest pseudonym kept, in bytes: a 128-bit hash in hex.
    pub const MAX: usize = 32;

    /// The pseudonym of these 16 bytes of hash, in lower-case hex.
    pub(crate) fn of_hash(hash: &[u8; 16]) -> Visitor {
        let mut text = [0u8; 32];
        crate::auth::hex_into(hash, &mut text);
        Visitor::from(std::str::from_utf8(&text).unwrap_or_default())
    }

    /// The pseudonym as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the click had no address, so no pseudonym (without reading it as text).
    pub fn is_empty(&self) -> bool {
        self.0.as_bytes().is_empty()
    }
}

impl From<&str> for Visitor {
    /// `text`, cut to [`Visitor::MAX`] bytes.
    fn from(text: &str) -> Self {
        Visitor(StackString::truncated(text))
    }
}

impl From<String> for Visitor {
    fn from(text: String) -> Self {
        Visitor::from(text.as_str())
    }
}

impl Deref for Visitor {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Visitor {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

// Compared and hashed as bytes (as `str` is), without the UTF-8 check `as_str` makes.
impl PartialEq for Visitor {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for Visitor {}

impl PartialEq<str> for Visitor {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Visitor {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for Visitor {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl fmt::Debug for Visitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Visitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Visitor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Visitor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Visitor;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a visitor pseudonym (text)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Visitor::from(text))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_32_hex_digits_and_long_text_is_cut() {
        let v = Visitor::of_hash(&[0xab; 16]);
        assert_eq!(v.as_str(), "ab".repeat(16));
        let long = "x".repeat(100);
        assert_eq!(Visitor::from(long.as_str()).len(), Visitor::MAX);
        // Cut at a character boundary, never inside one.
        let accents = "é".repeat(20);
        assert_eq!(Visitor::from(accents.as_str()).as_str(), "é".repeat(16));
    }

    #[test]
    fn it_travels_as_a_json_string() {
        let v = Visitor::from("visitor-7");
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, "\"visitor-7\"");
        assert_eq!(serde_json::from_str::<Visitor>(&json).unwrap(), v);
        assert!(serde_json::from_str::<Visitor>("7").is_err());
    }
}
