//! Short codes: a keyed bijective permutation of allocated ids, written in base62,
//! and the rules for custom aliases.
//!
//! Ids below 62⁷ (3.52 trillion) become exactly 7 characters; larger ids take 8 to 11.
//! Within each length the id is scrambled by a keyed Feistel network with cycle walking,
//! so the mapping is a bijection (no two ids share a code) while neighbouring ids give
//! unrelated codes.

use crate::error::{Error, Result};

/// The base62 alphabet, in ascending ASCII order so codes sort like their values.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of codes for the first 62⁷ ids.
pub const MIN_CODE_LEN: usize = 7;
const MAX_CODE_LEN: usize = 11;
const ROUNDS: usize = 6;

/// Turns ids into short codes and back.
#[derive(Clone)]
pub struct CodeGenerator {
    round_keys: [u64; ROUNDS],
}

impl std::fmt::Debug for CodeGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeGenerator { .. }")
    }
}

fn mix(mut z: u64) -> u64 {
    // SplitMix64 finaliser: every input bit affects every output bit.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pow62(n: usize) -> u128 {
    62u128.pow(n as u32)
}

/// The number of values of length `len` (capped at 2⁶⁴, the id space) and the
/// even bit width of the Feistel domain that covers them.
fn tier(len: usize) -> (u128, u32) {
    let size = pow62(len).min(1u128 << 64);
    let bits = 128 - (size - 1).leading_zeros();
    (size, bits + bits % 2)
}

impl CodeGenerator {
    /// A generator keyed by `secret`. Every instance that shares a store must use the
    /// same secret; with another one, codes still never collide (the store refuses
    /// duplicates) but they no longer map back to ids.
    pub fn new(secret: u64) -> Self {
        let mut round_keys = [0u64; ROUNDS];
        let mut state = secret ^ 0x6a09_e667_f3bc_c908;
        for key in &mut round_keys {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *key = mix(state);
        }
        CodeGenerator { round_keys }
    }

    fn feistel(&self, value: u64, bits: u32, inverse: bool) -> u64 {
        let half = bits / 2;
        let mask = if half == 64 {
            u64::MAX
        } else {
            (1u64 << half) - 1
        };
        let (mut left, mut right) = (value >> half & mask, value & mask);
        for i in 0..ROUNDS {
            let key = if inverse {
                self.round_keys[ROUNDS - 1 - i]
            } else {
                self.round_keys[i]
            };
            if inverse {
                let prev_right = left;
                left = right ^ (mix(prev_right ^ key) & mask);
                right = prev_right;
            } else {
                let next = left ^ (mix(right ^ key) & mask);
                left = right;
                right = next;
            }
        }
        left << half | right
    }

    /// Cycle walking: repeat the permutation of the enclosing power-of-two domain until
    /// the value falls back into `[0, size)`, which keeps it a bijection on that range.
    fn permute(&self, value: u64, size: u128, bits: u32, inverse: bool) -> u64 {
        let mut v = self.feistel(value, bits, inverse);
        while u128::from(v) >= size {
            v = self.feistel(v, bits, inverse);
        }
        v
    }

    fn len_for(id: u64) -> usize {
        (MIN_CODE_LEN..MAX_CODE_LEN)
            .find(|&len| u128::from(id) < pow62(len))
            .unwrap_or(MAX_CODE_LEN)
    }

    /// The code of `id`.
    pub fn encode(&self, id: u64) -> String {
        let len = Self::len_for(id);
        let (size, bits) = tier(len);
        let mut v = self.permute(id, size, bits, false);
        let mut out = vec![b'0'; len];
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(v % 62) as usize];
            v /= 62;
        }
        // The alphabet is ASCII, so this never fails.
        String::from_utf8(out).unwrap_or_default()
    }

    /// The id whose code is `code`, or `None` when no id has that code (custom aliases,
    /// foreign text).
    pub fn decode(&self, code: &str) -> Option<u64> {
        let len = code.len();
        if !(MIN_CODE_LEN..=MAX_CODE_LEN).contains(&len) {
            return None;
        }
        let mut value: u128 = 0;
        for b in code.bytes() {
            let digit = ALPHABET.iter().position(|&a| a == b)?;
            value = value * 62 + digit as u128;
        }
        let (size, bits) = tier(len);
        if value >= size {
            return None;
        }
        let id = self.permute(value as u64, size, bits, true);
        (Self::len_for(id) == len).then_some(id)
    }
}

/// Words that can never be aliases because they would confuse people (they look like
/// pages of the service). A server adds its own top-level routes with
/// [`ShortenerBuilder::reserved_aliases`](crate::ShortenerBuilder::reserved_aliases).
pub const RESERVED_WORDS: &[&str] = &[
    "about",
    "admin",
    "assets",
    "auth",
    "dashboard",
    "doc",
    "favicon.ico",
    "health",
    "healthz",
    "help",
    "login",
    "logout",
    "openapi",
    "qr",
    "redoc",
    "register",
    "settings",
    "signin",
    "signup",
    "static",
    "swagger",
    "well-known",
    "www",
];

/// Checks a custom alias: 3–64 characters of `[A-Za-z0-9_-]`, none of
/// [`RESERVED_WORDS`] nor of `more_reserved` (compared without regard to case).
pub fn validate_alias(alias: &str, more_reserved: &[Box<str>]) -> Result<()> {
    let len = alias.chars().count();
    if !(3..=64).contains(&len) {
        return Err(Error::invalid(
            "custom_alias",
            "invalid_alias",
            format!("must be 3 to 64 characters long, got {len}"),
        ));
    }
    if let Some(bad) = alias
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(Error::invalid(
            "custom_alias",
            "invalid_alias",
            format!("may only contain letters, digits, '_' and '-', found {bad:?}"),
        ));
    }
    if RESERVED_WORDS
        .iter()
        .copied()
        .chain(more_reserved.iter().map(|w| &**w))
        .any(|word| word.eq_ignore_ascii_case(alias))
    {
        return Err(Error::invalid(
            "custom_alias",
            "reserved_alias",
            format!("{alias:?} is reserved"),
        ));
    }
    Ok(())
}

/// Whether `code` could be a code at all (cheap check before any cache or store lookup).
pub fn is_plausible_code(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| CODE_BYTES[usize::from(b)])
}

/// The bytes a code may hold (ASCII letters and digits, `_` and `-`), as a table: one
/// look-up a byte instead of four range tests, on every redirect.
const CODE_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn plausible_codes_hold_letters_digits_underscores_and_hyphens_only() {
        for c in (0..=0x2FFu32).filter_map(char::from_u32) {
            let allowed = c.is_ascii_alphanumeric() || c == '_' || c == '-';
            assert_eq!(is_plausible_code(&format!("ab{c}")), allowed, "{c:?}");
        }
        assert!(is_plausible_code(&"x".repeat(64)));
        assert!(!is_plausible_code(&"x".repeat(65)));
        assert!(!is_plausible_code(""));
    }

    #[test]
    fn first_ids_give_seven_characters_and_last_of_tier_too() {
        let g = CodeGenerator::new(42);
        for id in [0, 1, 2, 1_000_000, 3_521_614_606_207] {
            assert_eq!(g.encode(id).len(), 7, "id {id}");
        }
        assert_eq!(g.encode(3_521_614_606_208).len(), 8);
        assert_eq!(g.encode(u64::MAX).len(), 11);
    }

    #[test]
    fn bijection_on_a_small_domain_by_exhaustion() {
        // The same construction on a 62² domain, checked exhaustively.
        let g = CodeGenerator::new(7);
        let (size, bits) = (62u128 * 62, 12);
        let outputs: HashSet<u64> = (0..size as u64)
            .map(|v| g.permute(v, size, bits, false))
            .collect();
        assert_eq!(outputs.len(), size as usize);
        assert!(outputs.iter().all(|&v| u128::from(v) < size));
    }

    #[test]
    fn neighbours_are_not_neighbours() {
        let g = CodeGenerator::new(1);
        let codes: Vec<String> = (1000..1010).map(|id| g.encode(id)).collect();
        let distinct_prefixes: HashSet<&str> = codes.iter().map(|c| &c[..3]).collect();
        assert!(distinct_prefixes.len() >= 8, "{codes:?}");
    }

    #[test]
    fn other_secret_other_codes() {
        assert_ne!(
            CodeGenerator::new(1).encode(5),
            CodeGenerator::new(2).encode(5)
        );
    }

    #[test]
    fn decode_refuses_foreign_text() {
        let g = CodeGenerator::new(3);
        assert_eq!(g.decode("abc"), None);
        assert_eq!(g.decode("abc-def"), None);
        assert_eq!(g.decode("zzzzzzzzzzzz"), None);
    }

    #[test]
    fn aliases() {
        assert!(validate_alias("my-link_1", &[]).is_ok());
        assert!(validate_alias("ab", &[]).is_err());
        assert!(validate_alias(&"a".repeat(65), &[]).is_err());
        assert!(validate_alias("has space", &[]).is_err());
        assert!(validate_alias("ünï", &[]).is_err());
        let routes: Vec<Box<str>> = vec!["api".into(), "docs".into()];
        assert!(
            validate_alias("api", &[]).is_ok(),
            "routes come from the caller"
        );
        let reserved = validate_alias("API", &routes).unwrap_err();
        assert!(matches!(
            reserved,
            Error::Invalid {
                code: "reserved_alias",
                ..
            }
        ));
        assert!(validate_alias("docs", &routes).is_err());
        assert!(validate_alias("Admin", &[]).is_err());
    }

    proptest! {
        #[test]
        fn codes_round_trip(id in any::<u64>(), secret in any::<u64>()) {
            let g = CodeGenerator::new(secret);
            let code = g.encode(id);
            prop_assert!(is_plausible_code(&code));
            prop_assert_eq!(g.decode(&code), Some(id));
        }

        #[test]
        fn seven_character_tier_round_trips(id in 0u64..3_521_614_606_208) {
            let g = CodeGenerator::new(99);
            let code = g.encode(id);
            prop_assert_eq!(code.len(), 7);
            prop_assert_eq!(g.decode(&code), Some(id));
        }

        #[test]
        fn distinct_ids_distinct_codes(a in any::<u64>(), b in any::<u64>()) {
            prop_assume!(a != b);
            let g = CodeGenerator::new(5);
            prop_assert_ne!(g.encode(a), g.encode(b));
        }
    }
}
