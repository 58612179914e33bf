//! Money as both doors and the browser see it: statement lines, wallets and
//! reconciliation reports. The ledger itself is `services::ledger`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    TopUp,
    Payment,
    Refund,
    Release,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::TopUp => "top_up",
            TransferKind::Payment => "payment",
            TransferKind::Refund => "refund",
            TransferKind::Release => "release",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "top_up" => TransferKind::TopUp,
            "payment" => TransferKind::Payment,
            "refund" => TransferKind::Refund,
            "release" => TransferKind::Release,
            _ => return None,
        })
    }
}

/// How far an order's payment has got: the durable record that lets each money
/// flow (pay, refund, release) resume after a crash. Stored as text in `payments.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentState {
    /// Money is in escrow; the order is not yet marked paid on its shard.
    Charged,
    /// Money is in escrow and the order is paid.
    Paid,
    /// The order was cancelled while the charge finished: money and stock went back.
    Voided,
    RefundRequested,
    Refunded,
    ReleaseRequested,
    /// Escrow went to the seller.
    Released,
}

impl PaymentState {
    pub const ALL: [PaymentState; 7] =
        [Self::Charged, Self::Paid, Self::Voided, Self::RefundRequested, Self::Refunded, Self::ReleaseRequested, Self::Released];
    /// States a flow was interrupted in, which the recovery worker drives on.
    pub const UNFINISHED: [PaymentState; 3] = [Self::Charged, Self::RefundRequested, Self::ReleaseRequested];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Charged => "charged",
            Self::Paid => "paid",
            Self::Voided => "voided",
            Self::RefundRequested => "refund_requested",
            Self::Refunded => "refunded",
            Self::ReleaseRequested => "release_requested",
            Self::Released => "released",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
    }
}

impl std::fmt::Display for PaymentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a wallet's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct JournalEntry {
    pub transfer_id: String,
    pub kind: TransferKind,
    /// Positive: money in; negative: money out.
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    /// The order it concerns, as a 19-digit string.
    pub order_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Wallet {
    pub balance_cents: i64,
    /// Newest first.
    pub entries: Vec<JournalEntry>,
    pub next_cursor: Option<String>,
}

/// An account whose balance disagrees with the sum of its journal entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Mismatch {
    pub account_id: String,
    pub balance_cents: i64,
    pub journal_sum_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Reconciliation {
    pub accounts_checked: i64,
    pub mismatches: Vec<Mismatch>,
    /// Transfers whose entries do not sum to zero (never expected: the journal is
    /// written only by [`transfer`]).
    pub unbalanced_transfers: Vec<String>,
    /// RFC 3339.
    pub checked_at: String,
}

