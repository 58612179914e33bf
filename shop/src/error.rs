//! The one error type of the services. Each variant has a stable machine code
//! (`code()`), which both doors (JSON API and pages) show; the HTTP status is the
//! server's business.

use crate::domain::FieldError;
use crate::ledger::PaymentState;
use crate::orders::OrderStatus;
use std::fmt;

/// The state that refused a transition: the order's, or its payment's when the
/// order's own status would allow it but the money is elsewhere in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusingState {
    Order(OrderStatus),
    Payment(PaymentState),
}

impl fmt::Display for RefusingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusingState::Order(status) => write!(f, "the order is {status}"),
            RefusingState::Payment(state) => write!(f, "its payment is {state}"),
        }
    }
}

impl From<OrderStatus> for RefusingState {
    fn from(status: OrderStatus) -> Self {
        RefusingState::Order(status)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// Input that parsed as JSON but broke a rule; names the field.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The thing does not exist, or it is not the caller's to see.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("an account with that email address already exists")]
    EmailTaken,
    /// An edit named a version that is no longer current.
    #[error("the record changed since you read it (now version {current_version})")]
    StaleVersion { current_version: i64 },
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("sign in to do this")]
    Unauthenticated,
    #[error("your account is not allowed to do this")]
    Forbidden,
    /// Repeated failed sign-ins: the account is cooling down.
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: u64 },
    /// Not enough stock for a line; nothing was taken for any line.
    #[error("not enough stock of product {product_id} for this order; nothing was taken")]
    InsufficientStock { product_id: i64 },
    /// A database does not answer (down, unreachable, or too slow); nothing was
    /// done that the caller could not retry.
    #[error("the shop cannot reach its database right now; try again in a moment")]
    Unavailable,
    /// More work is waiting than the server takes on; try again shortly.
    #[error("the server is busy; try again in a moment")]
    Overloaded { retry_after_secs: u64 },
    /// Top-ups (demo money) are switched off on this shop.
    #[error("topping up the wallet is not available on this shop")]
    TopUpDisabled,
    /// Today's top-ups would pass the daily cap; nothing was deposited.
    #[error("you can top up at most {} a day; try again after {resets_at}", crate::domain::Money::from_stored(*cap_cents))]
    TopUpLimit { cap_cents: i64, resets_at: String, retry_after_secs: u64 },
    /// The buyer already holds the most unpaid orders allowed; nothing was written.
    #[error("you already have {max} unpaid orders; pay or cancel one first")]
    TooManyUnpaidOrders { max: i64 },
    /// The order would cost another total than the one the buyer was shown.
    #[error("prices changed since this checkout was opened: the total is now {}; nothing was ordered, so review it and order again", crate::domain::Money::from_stored(*total_cents))]
    PriceChanged { total_cents: i64 },
    /// The checkout token is unknown, expired, someone else's, or for another order.
    #[error("this checkout is no longer valid; open the checkout again")]
    InvalidCheckoutToken,
    /// A waybill change named a version that is no longer current.
    #[error("this waybill was changed since you read it (now version {})", current.version)]
    StaleWaybill { current: crate::orders::Waybill },
    /// The wallet holds less than the payment; no money moved.
    #[error("your wallet holds {balance_cents} cents, less than the {needed_cents} cents due; top it up and pay again")]
    InsufficientFunds { balance_cents: i64, needed_cents: i64 },
    /// An upload is bigger than allowed; nothing was stored.
    #[error("the file is too large: at most {} MB", max_bytes / (1024 * 1024))]
    TooLarge { max_bytes: u64 },
    /// An upload is not of a kind accepted here (or not what it said it was).
    #[error("this file is not a JPEG, PNG or WebP image (or not the kind of file it claims to be)")]
    UnsupportedMedia,
    /// The order was moved to the archive: it is final and takes no more changes.
    #[error("this order is archived: it is final and can no longer be changed")]
    Archived,
    /// The order is not in a state that allows this.
    #[error("{state}, so this cannot be done")]
    InvalidTransition { state: RefusingState },
    /// A bug or an outage; details are logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ShopError {
    fn from(error: sqlx::Error) -> Self {
        if crate::db::dialect::is_unavailable(&error) {
            tracing::warn!(%error, "a database did not answer");
            return ShopError::Unavailable;
        }
        ShopError::Internal(anyhow::Error::new(error))
    }
}

impl ShopError {
    /// Stable, machine-readable: clients branch on this, never on the message.
    pub fn code(&self) -> &'static str {
        match self {
            ShopError::Invalid(_) => "validation_failed",
            ShopError::NotFound(_) => "not_found",
            ShopError::EmailTaken => "email_taken",
            ShopError::StaleVersion { .. } | ShopError::StaleWaybill { .. } => "stale_version",
            ShopError::InvalidCredentials => "invalid_credentials",
            ShopError::Unauthenticated => "unauthenticated",
            ShopError::Forbidden => "forbidden",
            ShopError::TooManyAttempts { .. } => "too_many_attempts",
            ShopError::InsufficientStock { .. } => "insufficient_stock",
            ShopError::InvalidCheckoutToken => "invalid_checkout_token",
            ShopError::TooManyUnpaidOrders { .. } => "too_many_unpaid_orders",
            ShopError::TopUpDisabled => "top_up_disabled",
            ShopError::Overloaded { .. } => "overloaded",
            ShopError::Unavailable => "database_unavailable",
            ShopError::TopUpLimit { .. } => "top_up_limit",
            ShopError::PriceChanged { .. } => "price_changed",
            ShopError::InvalidTransition { .. } => "invalid_transition",
            ShopError::Archived => "archived",
            ShopError::TooLarge { .. } => "too_large",
            ShopError::UnsupportedMedia => "unsupported_media_type",
            ShopError::InsufficientFunds { .. } => "insufficient_funds",
            ShopError::Internal(_) => "internal",
        }
    }
}

impl ShopError {
    /// The HTTP status both doors answer with. Only [`ShopError::Internal`] is a 5xx:
    /// everything a caller can cause is a 4xx.
    pub fn http_status(&self) -> u16 {
        match self {
            ShopError::Invalid(_) => 422,
            ShopError::NotFound(_) => 404,
            ShopError::EmailTaken
            | ShopError::StaleVersion { .. }
            | ShopError::StaleWaybill { .. }
            | ShopError::InsufficientStock { .. }
            | ShopError::InvalidCheckoutToken
            | ShopError::TooManyUnpaidOrders { .. }
            | ShopError::PriceChanged { .. }
            | ShopError::InvalidTransition { .. }
            | ShopError::Archived => 409,
            ShopError::InvalidCredentials | ShopError::Unauthenticated => 401,
            ShopError::Forbidden | ShopError::TopUpDisabled => 403,
            ShopError::TooManyAttempts { .. } | ShopError::TopUpLimit { .. } => 429,
            ShopError::InsufficientFunds { .. } => 402,
            ShopError::TooLarge { .. } => 413,
            ShopError::UnsupportedMedia => 415,
            ShopError::Overloaded { .. } | ShopError::Unavailable => 503,
            ShopError::Internal(_) => 500,
        }
    }
}

impl ShopError {
    /// The order is in `status`, which does not allow what was asked.
    pub fn order_is(status: OrderStatus) -> Self {
        ShopError::InvalidTransition { state: RefusingState::Order(status) }
    }
}

pub type ShopResult<T> = Result<T, ShopError>;

/// An id in a path, link or form that cannot name anything is simply a thing that
/// does not exist: 404, as an unknown id would be.
pub fn id_or_not_found<T: std::str::FromStr>(raw: &str, what: &'static str) -> ShopResult<T> {
    raw.trim().parse().map_err(|_| ShopError::NotFound(what))
}

/// A worker's item that failed: logged, counted in
/// `ninefold_worker_failures_total{worker}`, and tried again on a later pass. One
/// bad row or one unreachable shard never stops the work on the others.
pub(crate) fn worker_failed(worker: &'static str, item: &str, error: &ShopError) {
    metrics::counter!("ninefold_worker_failures_total", "worker" => worker).increment(1);
    tracing::warn!(worker, item, %error, "worker item failed; it is tried again on a later pass");
}
