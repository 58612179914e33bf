//! The content of a product as sold, and the digest that names it (DESIGN.md,
//! failure mode 2): orders of an unchanged product share one snapshot.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// A product as it was sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Snapshot {
    pub digest: String,
    pub product_id: i64,
    pub title: String,
    pub description: String,
    pub price_cents: i64,
    /// The product's main picture as sold (its image key), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_key: Option<String>,
    /// When the first order of this content was placed (RFC 3339).
    pub created_at: String,
}

/// Whether text has the shape of a digest (32 lowercase hex digits).
pub fn is_digest(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The canonical form, version 1, is these bytes:
///
/// 1. the ASCII text `ninefold-snapshot-v1`;
/// 2. for each field, in this order: `title`, `description`, `price_cents`, the
///    byte 0x1F (ASCII unit separator) followed by the field's value in UTF-8,
///    with `price_cents` written as base-10 ASCII digits, no sign, no leading zeros.
///
/// No field can contain 0x1F (titles refuse control characters; descriptions allow
/// only tab, CR and LF), so the form is unambiguous. Titles and descriptions are
/// stored trimmed, so whitespace at the ends cannot split one product in two.
/// The digest is MD5 over those bytes as 32 lowercase hex digits: a content key
/// for deduplication, not a security boundary.
pub fn digest(title: &str, description: &str, price_cents: i64) -> String {
    digest_with_picture(title, description, price_cents, None)
}

/// As [`digest`], with the product's main picture: a product that has one adds its
/// image key as a fourth field (0x1F and the key; keys are hex, a slash and a
/// dot). Without a picture the bytes, and so the digest, are exactly version 1's:
/// every snapshot taken before pictures existed keeps its digest.
pub fn digest_with_picture(title: &str, description: &str, price_cents: i64, image_key: Option<&str>) -> String {
    let mut hasher = Md5::new();
    hasher.update(b"ninefold-snapshot-v1");
    for field in [title.as_bytes(), description.as_bytes(), price_cents.to_string().as_bytes()] {
        hasher.update([0x1F]);
        hasher.update(field);
    }
    if let Some(key) = image_key {
        hasher.update([0x1F]);
        hasher.update(key.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_stable_and_depends_on_every_field() {
        let base = digest("Teapot", "Blue.", 2500);
        assert_eq!(base.len(), 32);
        assert_eq!(base, digest("Teapot", "Blue.", 2500));
        assert_ne!(base, digest("Teapot ", "Blue.", 2500));
        assert_ne!(base, digest("Teapot", "Blue!", 2500));
        assert_ne!(base, digest("Teapot", "Blue.", 2501));
        // Field boundaries matter: moving text between fields changes the digest.
        assert_ne!(digest("ab", "c", 1), digest("a", "bc", 1));
    }
}
