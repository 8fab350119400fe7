//! Small text helpers for hot paths.

/// Text formatted into a fixed buffer on the stack, for hot paths that must not allocate
/// (rate-limit keys, request ids). Writing past `N` bytes fails with `fmt::Error` and
/// leaves the text as it was before that write.
#[derive(Clone, Copy)]
pub struct StackString<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackString<N> {
    /// An empty string.
    pub const fn new() -> Self {
        StackString {
            buf: [0; N],
            len: 0,
        }
    }

    /// The longest start of `text` that fits in `N` bytes, cut at a character boundary.
    pub fn truncated(text: &str) -> Self {
        let cut = cut(text, N);
        let mut s = Self::new();
        s.buf[..cut.len()].copy_from_slice(cut.as_bytes());
        s.len = cut.len();
        s
    }

    /// Lower-cases the ASCII letters written so far, in place.
    pub fn make_ascii_lowercase(&mut self) {
        self.buf[..self.len].make_ascii_lowercase();
    }

    /// The bytes of the text written so far (no check that they are UTF-8, which they
    /// always are: for hashing and comparing).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so this is always valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The longest start of `text` of at most `max` bytes, cut at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Longest piece of a client's input repeated in an error message.
pub const MAX_EXCERPT: usize = 60;

/// `text` cut to 60 characters (marked when cut): errors name what was wrong
/// without repeating megabytes of it.
pub fn excerpt(text: &str) -> String {
    let mut cut: String = text.chars().take(MAX_EXCERPT).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

impl<const N: usize> Default for StackString<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Write for StackString<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > N {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> std::fmt::Debug for StackString<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn writes_until_full() {
        let mut s = StackString::<8>::new();
        write!(s, "ab{}", 12).unwrap();
        assert_eq!(s.as_str(), "ab12");
        assert!(write!(s, "too long").is_err());
        assert_eq!(s.as_str(), "ab12");
    }

    #[test]
    fn excerpts_are_bounded_and_marked_when_cut() {
        assert_eq!(excerpt("short"), "short");
        let long = "x".repeat(3_000_000);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), MAX_EXCERPT + 1);
        assert!(cut.ends_with('…'));
    }
}
