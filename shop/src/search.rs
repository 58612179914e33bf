//! Finding products: search terms, filters, sort orders and the cursors that page
//! through each order. Plain types, parsed at the edge; the browser shares them.

use crate::domain::{FieldError, UserId};

/// How a product list is ordered. `Relevance` exists only for a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSort {
    Newest,
    PriceAsc,
    PriceDesc,
    Relevance,
}

impl ProductSort {
    pub const CHOICES: [ProductSort; 4] = [Self::Relevance, Self::Newest, Self::PriceAsc, Self::PriceDesc];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::PriceAsc => "price_asc",
            Self::PriceDesc => "price_desc",
            Self::Relevance => "relevance",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Newest => "Newest",
            Self::PriceAsc => "Price: low to high",
            Self::PriceDesc => "Price: high to low",
            Self::Relevance => "Best match",
        }
    }

    /// `None` or empty: best match for a search, else newest.
    pub fn parse(field: &str, raw: Option<&str>, searching: bool) -> Result<Self, FieldError> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(if searching { Self::Relevance } else { Self::Newest }),
            Some("relevance") if !searching => Err(FieldError::new(field, "relevance needs a search (q)")),
            Some(raw) => Self::CHOICES.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| FieldError::new(field, "must be newest, price_asc, price_desc or relevance")),
        }
    }
}

/// What a shopper typed, as the words to find: lowercased runs of letters and
/// digits, at most [`SearchTerms::MAX_WORDS`]. Punctuation and operators of the
/// databases' own query languages never reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    pub const MAX_CHARS: usize = 200;
    pub const MAX_WORDS: usize = 8;

    /// `None` when there is nothing to search for (absent or blank).
    pub fn parse(field: &str, raw: Option<&str>) -> Result<Option<Self>, FieldError> {
        let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(field, format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        let words = raw
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| w.chars().take(40).collect::<String>().to_lowercase())
            .take(Self::MAX_WORDS)
            .collect();
        Ok(Some(Self(words)))
    }

    /// The words; empty when the text held none (it then matches nothing).
    pub fn words(&self) -> &[String] {
        &self.0
    }
}

/// A category's URL name: 1 to 40 of `a-z`, `0-9` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CategorySlug(String);

impl CategorySlug {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        let ok = (1..=40).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok { Ok(Self(raw.to_owned())) } else { Err(FieldError::new(field, "is not a category")) }
    }

    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which products a list shows. Every part is optional; they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFilter {
    pub terms: Option<SearchTerms>,
    pub category: Option<CategorySlug>,
    pub seller: Option<UserId>,
    pub min_price_cents: Option<i64>,
    pub max_price_cents: Option<i64>,
    pub in_stock: bool,
}

impl ProductFilter {
    /// Checks the price range: each bound 0..=[`crate::domain::Money::MAX_CENTS`], min ≤ max.
    pub fn with_prices(mut self, min: Option<i64>, max: Option<i64>) -> Result<Self, FieldError> {
        let bounded = |field: &str, value: Option<i64>| match value {
            Some(v) if !(0..=crate::domain::Money::MAX_CENTS).contains(&v) => Err(FieldError::new(field, format!("must be between 0 and {}", crate::domain::Money::MAX_CENTS))),
            other => Ok(other),
        };
        self.min_price_cents = bounded("min_price_cents", min)?;
        self.max_price_cents = bounded("max_price_cents", max)?;
        if let (Some(min), Some(max)) = (self.min_price_cents, self.max_price_cents)
            && min > max
        {
            return Err(FieldError::new("min_price_cents", "must not be above max_price_cents"));
        }
        Ok(self)
    }
}

/// Where the next page of a sorted list starts: the last item's sort key and id.
/// Opaque to clients; a cursor from one order is refused under another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProductCursor {
    Newest { id: i64 },
    Price { price_cents: i64, id: i64 },
    Relevance { score: f64, id: i64 },
}

impl ProductCursor {
    pub fn encode(self) -> String {
        match self {
            Self::Newest { id } => format!("p{id:x}"),
            Self::Price { price_cents, id } => format!("c{price_cents:x}.{id:x}"),
            Self::Relevance { score, id } => format!("r{:x}.{id:x}", score.to_bits()),
        }
    }

    pub fn decode(field: &str, raw: &str, sort: ProductSort) -> Result<Self, FieldError> {
        let invalid = || FieldError::new(field, "is not a cursor this server issued for this order");
        let hex = |s: &str| i64::from_str_radix(s, 16).ok().filter(|n| *n >= 0);
        fn pair(rest: &str) -> Option<(&str, i64)> {
            let (key, id) = rest.split_once('.')?;
            Some((key, i64::from_str_radix(id, 16).ok().filter(|id| *id > 0)?))
        }
        let cursor = match (raw.get(..1), sort) {
            (Some("p"), ProductSort::Newest) => hex(&raw[1..]).filter(|id| *id > 0).map(|id| Self::Newest { id }),
            (Some("c"), ProductSort::PriceAsc | ProductSort::PriceDesc) => pair(&raw[1..]).and_then(|(price, id)| Some(Self::Price { price_cents: hex(price)?, id })),
            (Some("r"), ProductSort::Relevance) => pair(&raw[1..]).and_then(|(bits, id)| {
                let score = f64::from_bits(u64::from_str_radix(bits, 16).ok()?);
                score.is_finite().then_some(Self::Relevance { score, id })
            }),
            _ => None,
        };
        cursor.ok_or_else(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn search_text_becomes_plain_words() {
        let words = |raw: &str| SearchTerms::parse("q", Some(raw)).unwrap().map(|t| t.0);
        assert_eq!(words("  Copper KETTLE, 1.5 l "), Some(vec!["copper".into(), "kettle".into(), "1".into(), "5".into(), "l".into()]));
        assert_eq!(words("\"lamp* NEAR(desk) OR 'x'--"), Some(vec!["lamp".into(), "near".into(), "desk".into(), "or".into(), "x".into()]));
        assert_eq!(words("!!!"), Some(vec![]));
        assert_eq!(words("   "), None);
        assert_eq!(words("Kaffeemühle"), Some(vec!["kaffeemühle".into()]));
        assert!(SearchTerms::parse("q", Some(&"a".repeat(201))).is_err());
    }

    #[test]
    fn a_cursor_only_pages_the_order_it_came_from() {
        let price = ProductCursor::Price { price_cents: 1500, id: 42 }.encode();
        assert!(ProductCursor::decode("cursor", &price, ProductSort::PriceAsc).is_ok());
        assert!(ProductCursor::decode("cursor", &price, ProductSort::Newest).is_err());
        assert!(ProductCursor::decode("cursor", "p2a", ProductSort::Relevance).is_err());
        assert!(ProductCursor::decode("cursor", "r7ff8000000000000.1", ProductSort::Relevance).is_err(), "NaN");
    }

    #[test]
    fn sorts_and_price_ranges_are_checked() {
        assert_eq!(ProductSort::parse("sort", None, true).unwrap(), ProductSort::Relevance);
        assert_eq!(ProductSort::parse("sort", Some(""), false).unwrap(), ProductSort::Newest);
        assert!(ProductSort::parse("sort", Some("relevance"), false).is_err());
        assert!(ProductSort::parse("sort", Some("cheapest"), false).is_err());
        assert!(ProductFilter::default().with_prices(Some(500), Some(100)).is_err());
        assert!(ProductFilter::default().with_prices(Some(-1), None).is_err());
        assert!(ProductFilter::default().with_prices(Some(0), Some(100)).is_ok());
    }

    proptest! {
        #[test]
        fn cursors_round_trip(id in 1i64.., price in 0i64.., score in -1e6f64..1e6) {
            for (cursor, sort) in [
                (ProductCursor::Newest { id }, ProductSort::Newest),
                (ProductCursor::Price { price_cents: price, id }, ProductSort::PriceDesc),
                (ProductCursor::Relevance { score, id }, ProductSort::Relevance),
            ] {
                prop_assert_eq!(ProductCursor::decode("cursor", &cursor.encode(), sort).unwrap(), cursor);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(raw in "\\PC{0,60}") {
            let _ = SearchTerms::parse("q", Some(&raw));
            for sort in ProductSort::CHOICES {
                let _ = ProductCursor::decode("cursor", &raw, sort);
            }
        }
    }
}
