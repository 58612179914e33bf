//! Bounded, trimmed text. Every limit is in characters, not bytes, and control
//! characters (other than newlines in long text) are refused so they never reach a page.

use super::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Characters that make text show other than it reads: bidirectional overrides
/// and isolates (a title that renders "gpj.exe" as "exe.jpg") and invisible
/// zero-width characters (two names that look the same and are not).
pub fn is_spoofing(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Trimmed text of `min_chars..=max_chars` characters, on one line, with no
/// control or spoofing characters: what every short text field accepts.
pub fn one_line(field: &str, raw: &str, min_chars: usize, max_chars: usize) -> Result<String, FieldError> {
    bounded(field, raw, min_chars, max_chars, false)
}

fn bounded(field: &str, raw: &str, min_chars: usize, max_chars: usize, multiline: bool) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars < min_chars {
        return Err(FieldError::new(field, if min_chars == 1 { "must not be empty".to_owned() } else { format!("must be at least {min_chars} characters") }));
    }
    if chars > max_chars {
        return Err(FieldError::new(field, format!("must be at most {max_chars} characters")));
    }
    let bad_control = |c: char| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t'));
    if trimmed.chars().any(bad_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    if trimmed.chars().any(is_spoofing) {
        return Err(FieldError::new(field, "must not contain invisible or direction-changing characters"));
    }
    Ok(trimmed.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, min = $min:expr, max = $max:expr, multiline = $ml:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
                bounded(field, raw, $min, $max, $ml).map(Self)
            }

            pub fn from_stored(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A product title: 1..=200 characters on one line.
    Title, min = 1, max = 200, multiline = false
);
text_type!(
    /// A product description: up to 5000 characters, newlines allowed.
    Description, min = 0, max = 5000, multiline = true
);
text_type!(
    /// A person's display name: 1..=100 characters.
    PersonName, min = 1, max = 100, multiline = false
);

/// An email address, lower-cased so that sign-in is case-insensitive. The check is
/// deliberately shallow (one `@`, a dotted domain, no spaces): only a delivered
/// message proves an address, and strict grammars refuse real addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let value = bounded(field, raw, 3, Self::MAX_CHARS, false)?.to_lowercase();
        let invalid = || FieldError::new(field, "must be an email address like name@example.com");
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@');
        if local.is_empty() || !domain_ok || value.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        Ok(Self(value))
    }

    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: 8..=128 characters. Deliberately not `Serialize` and its
/// `Debug` hides the value, so it cannot end up in a log or a response.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(FieldError::new(field, format!("must be at least {} characters", Self::MIN_CHARS)));
        }
        if chars > Self::MAX_CHARS {
            return Err(FieldError::new(field, format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        Ok(Self(raw.to_owned()))
    }

    /// For sign-in: any non-empty string up to the cap may be tried, so that an old
    /// password that predates a rule change still works.
    pub fn parse_attempt(field: &str, raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(field, format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_that_reads_other_than_it_shows_is_refused() {
        for spoof in ["gpj\u{202E}exe.jpg", "Ann\u{200B}a", "\u{2066}Shop\u{2069}", "Bob\u{FEFF}", "a\u{200F}b"] {
            let error = Title::parse("title", spoof).unwrap_err();
            assert_eq!(error.field, "title");
            assert!(PersonName::parse("name", spoof).is_err(), "{spoof:?}");
            assert!(one_line("shipping_address.city", spoof, 1, 100).is_err(), "{spoof:?}");
        }
        assert!(Title::parse("title", "Crème brûlée, 日本茶 & ☕").is_ok(), "ordinary non-ASCII text is fine");
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(Title::parse("title", "  Tea  ").unwrap().as_str(), "Tea");
        assert!(Title::parse("title", "   ").is_err());
        assert!(Title::parse("title", &"x".repeat(201)).is_err());
        assert!(Title::parse("title", "a\u{0}b").is_err());
        assert!(Title::parse("title", "two\nlines").is_err());
        assert!(Description::parse("description", "two\nlines").is_ok());
        assert!(Description::parse("description", "").is_ok());
    }

    #[test]
    fn emails_are_lower_cased_and_shallowly_checked() {
        assert_eq!(Email::parse("email", " Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "@example.com", "ann@", "ann@example", "ann@.com", "a b@example.com", "a@b@c.com"] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let password = Password::parse("password", "correct horse").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }

    proptest! {
        #[test]
        fn parsed_titles_respect_their_limit(raw in "\\PC{0,300}") {
            if let Ok(title) = Title::parse("title", &raw) {
                let chars = title.as_str().chars().count();
                prop_assert!((1..=Title::MAX_CHARS).contains(&chars));
                prop_assert_eq!(title.as_str(), title.as_str().trim());
            }
        }

        #[test]
        fn passwords_accept_exactly_their_length_range(len in 0usize..200) {
            let raw = "p".repeat(len);
            prop_assert_eq!(Password::parse("password", &raw).is_ok(), (8..=128).contains(&len));
        }
    }
}
