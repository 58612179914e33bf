//! Random secrets handed to clients: session tokens, cart tokens, checkout tokens
//! and one-time form nonces. Each kind is its own type, so a cart token can never
//! be accepted where a session is meant. None is `Serialize`, and `Debug` hides
//! the value, so a secret cannot leak into a log by accident.

use crate::error::ShopResult;
use sha2::{Digest, Sha256};
use std::fmt;
use std::marker::PhantomData;

/// What a secret is for; only names it in `Debug`.
pub trait SecretKind {
    const NAME: &'static str;
}

/// 256 random bits as 64 lowercase hex digits, of kind `K`.
pub struct Secret<K: SecretKind> {
    value: String,
    kind: PhantomData<fn() -> K>,
}

macro_rules! secret_kind {
    ($(#[$doc:meta])* $kind:ident, $alias:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $kind {}
        impl SecretKind for $kind {
            const NAME: &'static str = stringify!($alias);
        }
        $(#[$doc])*
        pub type $alias = Secret<$kind>;
    };
}

secret_kind!(
    /// A signed-in session: the cookie's value or the bearer token.
    Session, SessionToken
);
secret_kind!(
    /// A server-side guest cart, for clients without script.
    GuestCart, CartToken
);
secret_kind!(
    /// The one-time token of a checkout page: placing its order consumes it.
    CheckoutSecret, CheckoutToken
);
secret_kind!(
    /// A one-time value a form embeds, to make its submit idempotent.
    Nonce, FormNonce
);

/// Random bytes in every secret.
const BYTES: usize = 32;

impl<K: SecretKind> Secret<K> {
    pub fn generate() -> ShopResult<Self> {
        let mut bytes = [0u8; BYTES];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a {}: {e}", K::NAME))?;
        Ok(Self::wrap(hex::encode(bytes)))
    }

    /// Accepts only strings of the exact shape we issue, so garbage from a cookie,
    /// header or form is refused before it reaches the database.
    pub fn parse(raw: &str) -> Option<Self> {
        let well_formed = raw.len() == BYTES * 2 && raw.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        well_formed.then(|| Self::wrap(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.value
    }

    /// What is stored instead of the secret itself, where only a match is needed.
    pub(crate) fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.value.as_bytes()))
    }

    fn wrap(value: String) -> Self {
        Self { value, kind: PhantomData }
    }
}

impl<K: SecretKind> Clone for Secret<K> {
    fn clone(&self) -> Self {
        Self::wrap(self.value.clone())
    }
}

impl<K: SecretKind> PartialEq for Secret<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K: SecretKind> Eq for Secret<K> {}

impl<K: SecretKind> fmt::Debug for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(***)", K::NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_hide_their_value_and_refuse_other_shapes() {
        let token = SessionToken::generate().unwrap();
        assert_eq!(SessionToken::parse(token.expose()), Some(token.clone()));
        assert_eq!(format!("{token:?}"), "SessionToken(***)");
        assert_eq!(format!("{:?}", CartToken::generate().unwrap()), "CartToken(***)");
        for garbage in ["", "abc", &"g".repeat(64), &"a".repeat(63), &token.expose().to_uppercase(), &format!("{} ", token.expose()), "'; DROP TABLE users; --"] {
            assert!(SessionToken::parse(garbage).is_none(), "{garbage:?}");
        }
    }
}
