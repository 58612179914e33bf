//! Wallet, paying, receipts and reconciliation: the pages' door into the
//! `ledger` and `payments` services.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shop::catalog::Product;
use shop::ledger::{Reconciliation, Wallet};

/// The wallet page: the wallet, and a fresh one-time nonce for the top-up form,
/// so submitting the same form twice deposits once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletPageData {
    pub wallet: Wallet,
    pub top_up_nonce: String,
    /// How much demo money a day the form may add; `None` when top-ups are off.
    pub top_up_daily_cap: Option<shop::domain::Money>,
}

/// What the payment-success page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSuccessData {
    pub order_id: String,
    pub amount: shop::domain::Money,
    pub paid: bool,
    /// A few other products, to carry on shopping.
    pub suggestions: Vec<Product>,
}

#[cfg(feature = "ssr")]
async fn signed_in() -> Result<shop::accounts::User, AppError> {
    super::ssr::caller().await?.ok_or_else(|| AppError::new(401, "unauthenticated", "Sign in to see your wallet."))
}

#[server(prefix = "/fn", endpoint = "wallet_page")]
pub async fn wallet_page(cursor: Option<String>) -> Result<WalletPageData, AppError> {
    let user = signed_in().await?;
    let shop = super::ssr::shop()?;
    let wallet = shop.ledger.wallet(&user, cursor.as_deref().filter(|c| !c.is_empty()), shop::services::ledger::Ledger::STATEMENT_PAGE).await?;
    let top_up_nonce = shop::secrets::FormNonce::generate()?.expose().to_owned();
    let policy = shop.ledger.top_up_policy();
    let top_up_daily_cap = policy.enabled.then(|| shop::domain::Money::from_stored(policy.daily_cap_cents));
    Ok(WalletPageData { wallet, top_up_nonce, top_up_daily_cap })
}

/// The top-up form. `amount` is in major units ("25.00"); `nonce` comes from the
/// page and names the deposit, so a double submit deposits once.
#[server(prefix = "/fn", endpoint = "top_up")]
pub async fn top_up(amount: String, nonce: String) -> Result<(), AppError> {
    use shop::domain::Money;
    let user = signed_in().await?;
    let amount = Money::parse_top_up("amount", Money::parse_major("amount", &amount)?)?;
    let nonce = shop::secrets::FormNonce::parse(&nonce)
        .ok_or_else(|| AppError::new(400, "bad_request", "The form was incomplete. Please reload the page and try again."))?;
    super::ssr::shop()?.ledger.top_up(&user, amount, &format!("form:{}", nonce.expose())).await?;
    Ok(())
}

/// Pays an order from the wallet, then shows the payment-success page.
#[server(prefix = "/fn", endpoint = "pay_order")]
pub async fn pay_order(order_id: String) -> Result<(), AppError> {
    let user = signed_in().await?;
    let id = super::order_id_or_not_found(&order_id, "order")?;
    super::ssr::shop()?.payments.pay(&user, id).await?;
    leptos_axum::redirect(&format!("/orders/{id}/paid"));
    Ok(())
}

#[server(prefix = "/fn", endpoint = "confirm_receipt")]
pub async fn confirm_receipt(order_id: String) -> Result<(), AppError> {
    let user = signed_in().await?;
    let id = super::order_id_or_not_found(&order_id, "order")?;
    super::ssr::shop()?.payments.confirm_receipt(&user, id).await?;
    leptos_axum::redirect(&format!("/orders/{id}"));
    Ok(())
}

#[server(prefix = "/fn", endpoint = "payment_success")]
pub async fn payment_success(order_id: String) -> Result<PaymentSuccessData, AppError> {
    let user = signed_in().await?;
    let shop = super::ssr::shop()?;
    let order = shop.orders.get(&user, super::order_id_or_not_found(&order_id, "order")?).await?;
    let bought: Vec<_> = order.lines.iter().map(|l| l.product_id).collect();
    Ok(PaymentSuccessData {
        order_id: order.id.to_string(),
        amount: shop::domain::Money::from_stored(order.total_cents),
        paid: order.status.is_paid(),
        suggestions: shop.catalog.suggestions(&bought, 4).await?,
    })
}

#[server(prefix = "/fn", endpoint = "reconcile_report")]
pub async fn reconcile_report() -> Result<Reconciliation, AppError> {
    let user = signed_in().await?;
    Ok(super::ssr::shop()?.ledger.reconcile_for(&user).await?)
}
