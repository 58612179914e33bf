//! The wallet, the payment-success page and the admin's reconciliation page.

use crate::pages::errors::form_failure;
use crate::pages::orders::sign_in_prompt;
use crate::pages::{ErrorBox, NotFound};
use crate::server_fns::money::{PaymentSuccessData, TopUp, payment_success, reconcile_report, wallet_page};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use shop::domain::Money;
use shop::ledger::{JournalEntry, TransferKind};

/// "+$12.50" / "−$7.00".
fn signed_amount(cents: i64) -> String {
    let sign = if cents < 0 { "−" } else { "+" };
    format!("{sign}${}", Money::from_stored(cents.abs()))
}

/// Where the buyer lands after paying (DESIGN.md, failure mode 7): it shows the
/// payment as confirmed before the order details, reading the order again from
/// its shard's primary (there are no replicas yet), and leads on from there.
#[component]
pub fn PaymentSuccessPage() -> impl IntoView {
    let params = use_params_map();
    let order_id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(order_id, payment_success);
    view! {
        <Title text="Payment successful"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(success) if success.paid => view! { <PaymentSuccessView success/> }.into_any(),
                    Ok(success) => view! {
                        <section class="notice">
                            <h1>"This order is not paid yet"</h1>
                            <p><a class="button" href=format!("/orders/{}", success.order_id)>"Go to the order"</a></p>
                        </section>
                    }.into_any(),
                    Err(error) if error.status == 401 => sign_in_prompt(format!("/orders/{}/paid", order_id())).into_any(),
                    Err(error) if error.is_not_found() => view! { <NotFound/> }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn PaymentSuccessView(success: PaymentSuccessData) -> impl IntoView {
    view! {
        <section class="order payment-success" data-testid="payment-success">
            <div class="banner ok"><h1>"Payment successful"</h1></div>
            <p>"You paid " <strong data-testid="amount-paid">{format!("${}", success.amount)}</strong> " for order " <span class="mono">{success.order_id.clone()}</span> "."</p>
            <h2>"What happens next"</h2>
            <ul>
                <li>"The seller packs your order and enters its tracking number; you will see it on the order page."</li>
                <li>"Your money is held safely until you confirm that the parcel arrived. Until it ships you can still cancel for a full refund to your wallet."</li>
            </ul>
            <p class="actions">
                <a class="button" href=format!("/orders/{}", success.order_id) data-testid="view-order">"View order details"</a>
                " " <a href="/">"Continue shopping"</a> " · " <a href="/wallet">"Your wallet"</a>
            </p>
        </section>
        {(!success.suggestions.is_empty()).then(|| view! {
            <section class="suggestions">
                <h2>"You might also like"</h2>
                <ul class="product-grid">
                    {success.suggestions.into_iter().map(|product| view! { <li><crate::pages::catalog::ProductCard product/></li> }).collect_view()}
                </ul>
            </section>
        })}
    }
}

#[component]
pub fn WalletPage() -> impl IntoView {
    let query = use_query_map();
    let top_up = ServerAction::<TopUp>::new();
    let pending = top_up.pending();
    let data = Resource::new(move || (query.read().get("cursor"), top_up.version().get()), |(cursor, _)| wallet_page(cursor));
    view! {
        <Title text="Wallet"/>
        <h1>"Your wallet"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading your wallet…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! {
                        <section class="order wallet">
                            <p class="balance">"Balance " <strong data-testid="wallet-balance">{format!("${}", Money::from_stored(page.wallet.balance_cents))}</strong></p>
                            {match page.top_up_daily_cap {
                                Some(cap) => view! {
                                    <ActionForm action=top_up attr:class="form top-up" attr:data-testid="top-up-form">
                                        <input type="hidden" name="nonce" value=page.top_up_nonce/>
                                        <label>"Top up (demo money, standing in for a card payment)" <input type="text" inputmode="decimal" name="amount" placeholder="25.00" required data-testid="top-up-amount"/></label>
                                        <button type="submit" disabled=move || pending.get() data-testid="top-up">{move || if pending.get() { "Adding…" } else { "Add money" }}</button>
                                        <p class="muted">{format!("Up to ${cap} a day.")}</p>
                                    </ActionForm>
                                }.into_any(),
                                None => view! { <p class="muted" data-testid="top-up-off">"Adding money to the wallet is not available on this shop."</p> }.into_any(),
                            }}
                            {form_failure(move || top_up.value().get())}
                            <h2>"Statement"</h2>
                            {if page.wallet.entries.is_empty() {
                                view! { <p class="muted">"No money has moved yet."</p> }.into_any()
                            } else {
                                view! {
                                    <table class="lines" data-testid="journal">
                                        <thead><tr><th>"When"</th><th>"What"</th><th>"Amount"</th><th>"Balance"</th></tr></thead>
                                        <tbody>{page.wallet.entries.into_iter().map(|entry| view! { <EntryRow entry/> }).collect_view()}</tbody>
                                    </table>
                                }.into_any()
                            }}
                            {page.wallet.next_cursor.map(|cursor| view! { <p class="pager"><a class="button" href=format!("/wallet?cursor={cursor}")>"Older entries"</a></p> })}
                        </section>
                    }.into_any(),
                    Err(error) if error.status == 401 => sign_in_prompt("/wallet".to_owned()).into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn EntryRow(entry: JournalEntry) -> impl IntoView {
    let what = match entry.kind {
        TransferKind::TopUp => "Top-up".to_owned(),
        TransferKind::Payment => "Payment".to_owned(),
        TransferKind::Refund => "Refund".to_owned(),
        TransferKind::Release => "Sale paid out".to_owned(),
    };
    let order = entry.order_id.clone();
    view! {
        <tr data-testid="journal-entry">
            <td>{entry.created_at.get(0..16).unwrap_or_default().replace('T', " ")}</td>
            <td>{what} {order.map(|id| view! { " · " <a href=format!("/orders/{id}")>"order"</a> })}</td>
            <td>{signed_amount(entry.amount_cents)}</td>
            <td>{format!("${}", Money::from_stored(entry.balance_after_cents.max(0)))}</td>
        </tr>
    }
}

#[component]
pub fn ReconcilePage() -> impl IntoView {
    let report = Resource::new(|| (), |_| reconcile_report());
    view! {
        <Title text="Reconciliation"/>
        <h1>"Ledger reconciliation"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Summing the journal…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Ok(report) => view! {
                        <section class="order">
                            <p>{format!("{} accounts checked at {}.", report.accounts_checked, report.checked_at)}</p>
                            {if report.mismatches.is_empty() && report.unbalanced_transfers.is_empty() {
                                view! { <p class="banner ok" data-testid="reconcile-ok">"Every balance equals the sum of its journal entries."</p> }.into_any()
                            } else {
                                view! {
                                    <p class="form-error" data-testid="reconcile-mismatches">{format!("{} accounts disagree with the journal.", report.mismatches.len())}</p>
                                    <table class="lines">
                                        <thead><tr><th>"Account"</th><th>"Balance"</th><th>"Journal sum"</th></tr></thead>
                                        <tbody>{report.mismatches.into_iter().map(|m| view! {
                                            <tr><td>{m.account_id}</td><td>{m.balance_cents}</td><td>{m.journal_sum_cents}</td></tr>
                                        }).collect_view()}</tbody>
                                    </table>
                                }.into_any()
                            }}
                            <p><a href="/admin/reconcile" rel="external">"Run again"</a></p>
                        </section>
                    }.into_any(),
                    Err(error) if error.status == 401 => sign_in_prompt("/admin/reconcile".to_owned()).into_any(),
                    Err(error) if error.status == 403 => view! { <NotFound/> }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}
