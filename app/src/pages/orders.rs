//! Buying: "Buy now" on a product page, the checkout page, the order page (which
//! is also the confirmation) and "my orders".

use crate::pages::errors::form_failure;
use crate::state::auth::Auth;
use crate::pages::{ErrorBox, NotFound};
use crate::server_fns::money::{ConfirmReceipt as ConfirmReceiptFn, PayOrder};
use crate::server_fns::{CancelOrder, CheckoutLineView, CheckoutPageData, OrderView, PlaceOrder, StartCheckout, get_checkout, get_order, my_orders, order_history};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_params_map, use_query_map};
use shop::domain::{Money, ProductId};
use shop::orders::{Order, OrderStatus};

/// "2026-11-24T13:45:12.5Z" → "2026-11-24 13:45 UTC".
pub(crate) fn when(rfc3339: &str) -> String {
    match (rfc3339.get(0..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

pub(crate) fn status_label(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::PendingPayment => "Awaiting payment",
        OrderStatus::Paid => "Paid",
        OrderStatus::Shipped => "Shipped",
        OrderStatus::Completed => "Completed",
        OrderStatus::Cancelled => "Cancelled",
    }
}

pub(crate) fn sign_in_prompt(next: String) -> impl IntoView {
    view! {
        <section class="notice">
            <h1>"Sign in to continue"</h1>
            <p><a class="button" href=format!("/login?next={next}")>"Sign in"</a></p>
        </section>
    }
}

/// The buy box on a product page.
#[component]
pub fn BuyNow(product_id: ProductId, available: i64) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let start = ServerAction::<StartCheckout>::new();
    let pending = start.pending();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let signed_in = matches!(auth.user.await, Ok(Some(_)));
                if available <= 0 {
                    view! { <p class="stock out">"Sold out: check back after the seller restocks."</p> }.into_any()
                } else if !signed_in {
                    view! { <p><a class="button" href=format!("/login?next=/products/{product_id}") data-testid="sign-in-to-buy">"Sign in to buy"</a></p> }.into_any()
                } else {
                    view! {
                        <ActionForm action=start attr:class="buy-now">
                            <input type="hidden" name="product_id" value=product_id.to_string()/>
                            <label>"Quantity " <input type="number" name="quantity" value="1" min="1" max=available.to_string() required/></label>
                            <button type="submit" disabled=move || pending.get() data-testid="buy-now">
                                {move || if pending.get() { "Opening checkout…" } else { "Buy now" }}
                            </button>
                        </ActionForm>
                        {form_failure(move || start.value().get())}
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
pub fn CheckoutPage() -> impl IntoView {
    let params = use_params_map();
    let order_id = move || params.read().get("order_id").unwrap_or_default();
    let data = Resource::new(order_id, get_checkout);
    view! {
        <Title text="Checkout"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading your checkout…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(CheckoutPageData::Open { order_id, checkout_token, lines, total, expires_at, reserves }) => {
                        view! { <CheckoutForm order_id checkout_token lines total expires_at reserves/> }.into_any()
                    }
                    // Already placed (Back, reload): show that order, never a second one.
                    Ok(CheckoutPageData::Placed { order_id }) => view! { <Redirect path=format!("/orders/{order_id}")/> }.into_any(),
                    Ok(CheckoutPageData::Expired) => view! {
                        <section class="notice" data-testid="checkout-expired">
                            <h1>"This checkout has expired"</h1>
                            <p>"A checkout stays open for 30 minutes. Open the product again to start a new one."</p>
                            <p><a class="button" href="/">"Back to the shop"</a></p>
                        </section>
                    }.into_any(),
                    Err(error) if error.status == 401 => sign_in_prompt(format!("/checkout/{}", order_id())).into_any(),
                    Err(error) if error.is_not_found() => view! { <NotFound/> }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn CheckoutForm(order_id: String, checkout_token: String, lines: Vec<CheckoutLineView>, total: Money, expires_at: String, reserves: bool) -> impl IntoView {
    let place = ServerAction::<PlaceOrder>::new();
    let pending = place.pending();
    view! {
        <section class="checkout">
            <h1>"Checkout"</h1>
            <p class="muted">"Order number " <span data-testid="checkout-order-id">{order_id.clone()}</span></p>
            <table class="lines">
                <thead><tr><th>"Item"</th><th>"Qty"</th><th>"Price"</th><th>"Total"</th></tr></thead>
                <tbody>
                    {lines.into_iter().map(|line| view! {
                        <tr><td>{line.title}</td><td>{line.quantity}</td><td>{format!("${}", line.unit_price)}</td><td>{format!("${}", line.line_total)}</td></tr>
                    }).collect_view()}
                </tbody>
                <tfoot><tr><th colspan="3">"Total"</th><th data-testid="checkout-total">{format!("${total}")}</th></tr></tfoot>
            </table>
            <p class="muted">{if reserves { "Placing the order reserves the stock while you pay; pay within 30 minutes, or the order is cancelled." } else { "Pay within 30 minutes of placing the order, or it is cancelled." }}</p>
            <ActionForm action=place attr:class="form" attr:data-testid="checkout-form">
                <input type="hidden" name="order_id" value=order_id/>
                <input type="hidden" name="checkout_token" value=checkout_token/>
                // The total shown above: if prices move before the submit, nothing is ordered.
                <input type="hidden" name="expected_total_cents" value=total.cents().to_string()/>
                <fieldset class="address">
                    <legend>"Ship to"</legend>
                    <label>"Full name" <input type="text" name="name" required maxlength="100" autocomplete="name"/></label>
                    <label>"Address" <input type="text" name="line1" required maxlength="200" autocomplete="address-line1"/></label>
                    <label>"Address line 2 (optional)" <input type="text" name="line2" maxlength="200" autocomplete="address-line2"/></label>
                    <label>"City" <input type="text" name="city" required maxlength="100" autocomplete="address-level2"/></label>
                    <label>"Postal code" <input type="text" name="postal_code" required maxlength="20" autocomplete="postal-code"/></label>
                    <label>"Country" <input type="text" name="country" required minlength="2" maxlength="60" autocomplete="country-name"/></label>
                </fieldset>
                <button type="submit" disabled=move || pending.get() data-testid="place-order">
                    {move || if pending.get() { "Placing your order…" } else { "Place order" }}
                </button>
            </ActionForm>
            {form_failure(move || place.value().get())}
            <p class="muted">"This checkout is open until " {when(&expires_at)} "."</p>
        </section>
    }
}

#[component]
pub fn OrderPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let just_placed = move || query.read().get("placed").is_some();
    let cancel = ServerAction::<CancelOrder>::new();
    let order = Resource::new(move || (params.read().get("id").unwrap_or_default(), cancel.version().get()), |(id, _)| get_order(id));
    view! {
        <Title text="Your order"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading your order…"</p> }>
            {move || Suspend::new(async move {
                match order.await {
                    Ok(view) => view! { <OrderDetail view just_placed=just_placed() cancel/> }.into_any(),
                    Err(error) if error.status == 401 => sign_in_prompt(format!("/orders/{}", params.read_untracked().get("id").unwrap_or_default())).into_any(),
                    Err(error) if error.is_not_found() => view! { <NotFound/> }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn OrderDetail(view: OrderView, just_placed: bool, cancel: ServerAction<CancelOrder>) -> impl IntoView {
    let OrderView { order, titles, pictures, balance_cents } = view;
    let pending = cancel.pending();
    let cancellable = order.status.can_cancel();
    let cancel_label = if order.status.cancel_refunds() { "Cancel and refund to my wallet" } else { "Cancel order" };
    let address = order.shipping_address.clone();
    let waybill = order.shipping.clone();
    view! {
        <section class="order" data-testid="order">
            {just_placed.then(|| view! {
                <div class="banner ok" data-testid="order-placed">
                    <h1>"Thank you! Your order is placed."</h1>
                </div>
            })}
            <h2>"Order " <span data-testid="order-id">{order.id.to_string()}</span></h2>
            <p>"Status: " <strong data-testid="order-status">{status_label(order.status)}</strong> " · placed " {when(&order.created_at)}
                {order.archived.then(|| view! { " " <span class="badge archived" data-testid="order-archived" title="Final orders move to your order history after 90 days">"Archived"</span> })}
            </p>
            {order.hold_expires_at.clone().map(|until| view! {
                <p class="hold" data-testid="hold-expires">"Your items are reserved until " {when(&until)} ". Pay before then, or the order is cancelled and the items go back on sale."</p>
            })}
            <LinesAsSold lines=order.lines.clone() titles=titles pictures=pictures total_cents=order.total_cents/>
            {order.status.awaits_payment().then(|| view! { <PayBox order_id=order.id.to_string() total=order.total_cents balance=balance_cents/> })}
            {waybill.map(|w| view! {
                <p class="waybill" data-testid="waybill">"Shipped with " <strong data-testid="carrier">{w.carrier}</strong> " · tracking number " <strong data-testid="tracking-number">{w.tracking_number}</strong></p>
            })}
            {order.status.can_confirm_receipt().then(|| view! { <ConfirmReceipt order_id=order.id.to_string()/> })}
            <p class="muted">"Ship to: " {format!("{}, {}{}, {} {}, {}", address.name, address.line1, if address.line2.is_empty() { String::new() } else { format!(", {}", address.line2) }, address.postal_code, address.city, address.country)}</p>
            {cancellable.then(|| view! {
                <ActionForm action=cancel attr:class="inline">
                    <input type="hidden" name="order_id" value=order.id.to_string()/>
                    <button type="submit" class="secondary" disabled=move || pending.get() data-testid="cancel-order">{cancel_label}</button>
                </ActionForm>
            })}
            {form_failure(move || cancel.value().get())}
            <p>{if order.archived {
                view! { <a href="/orders/history">"Order history"</a> }.into_any()
            } else {
                view! { <a href="/orders">"All my orders"</a> }.into_any()
            }}</p>
        </section>
    }
}

/// "Pay now" on an unpaid order: from the wallet, or a way to top it up first.
#[component]
fn PayBox(order_id: String, total: i64, balance: i64) -> impl IntoView {
    let pay = ServerAction::<PayOrder>::new();
    let pending = pay.pending();
    let enough = balance >= total;
    view! {
        <div class="pay-box" data-testid="pay-box">
            <p>"Your wallet holds " <strong data-testid="order-wallet-balance">{format!("${}", Money::from_stored(balance))}</strong> "."</p>
            {if enough {
                view! {
                    <ActionForm action=pay attr:class="inline">
                        <input type="hidden" name="order_id" value=order_id.clone()/>
                        <button type="submit" disabled=move || pending.get() data-testid="pay-order">
                            {move || if pending.get() { "Paying…".to_owned() } else { format!("Pay ${} from my wallet", Money::from_stored(total)) }}
                        </button>
                    </ActionForm>
                }.into_any()
            } else {
                view! { <p>"That is not enough for this order. " <a class="button" href="/wallet" data-testid="top-up-link">"Top up your wallet"</a></p> }.into_any()
            }}
            {form_failure(move || pay.value().get())}
        </div>
    }
}

#[component]
fn ConfirmReceipt(order_id: String) -> impl IntoView {
    let confirm = ServerAction::<ConfirmReceiptFn>::new();
    let pending = confirm.pending();
    view! {
        <ActionForm action=confirm attr:class="inline">
            <input type="hidden" name="order_id" value=order_id/>
            <button type="submit" disabled=move || pending.get() data-testid="confirm-receipt">"I received it: release the payment to the seller"</button>
        </ActionForm>
        {form_failure(move || confirm.value().get())}
    }
}

#[component]
pub fn MyOrdersPage() -> impl IntoView {
    let query = use_query_map();
    let orders = Resource::new(move || query.read().get("cursor"), my_orders);
    view! {
        <Title text="My orders"/>
        <h1>"My orders"</h1>
        <p class="muted">"Recent orders. Finished ones move to your " <a href="/orders/history" data-testid="order-history-link">"order history"</a> " after 90 days."</p>
        <OrderList orders empty="No orders yet." here="/orders"/>
    }
}

/// The buyer's archived orders: finished, and moved out of hot storage.
#[component]
pub fn OrderHistoryPage() -> impl IntoView {
    let query = use_query_map();
    let orders = Resource::new(move || query.read().get("cursor"), order_history);
    view! {
        <Title text="Order history"/>
        <h1>"Order history"</h1>
        <p class="muted">"Completed and cancelled orders older than 90 days. " <a href="/orders">"Back to my recent orders"</a></p>
        <OrderList orders empty="Nothing in your history yet." here="/orders/history"/>
    }
}

/// One page of orders with a link to the next, as "my orders" and the history show them.
#[component]
fn OrderList(orders: Resource<Result<shop::catalog::Page<Order>, crate::error::AppError>>, empty: &'static str, here: &'static str) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading your orders…"</p> }>
            {move || Suspend::new(async move {
                match orders.await {
                    Ok(page) if page.items.is_empty() => view! { <p class="notice">{empty} " " <a href="/">"Find something you like."</a></p> }.into_any(),
                    Ok(page) => view! {
                        <ul class="order-list">
                            {page.items.into_iter().map(|order| view! { <li><OrderRow order/></li> }).collect_view()}
                        </ul>
                        {page.next_cursor.map(|cursor| view! { <p class="pager"><a class="button" href=format!("{here}?cursor={cursor}")>"Older orders"</a></p> })}
                    }.into_any(),
                    Err(error) if error.status == 401 => sign_in_prompt(here.to_owned()).into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn OrderRow(order: Order) -> impl IntoView {
    view! {
        <a class="order-row" href=format!("/orders/{}", order.id) data-testid="my-order" data-order-id=order.id.to_string()>
            <span class="id">{order.id.to_string()}</span>
            <span>{when(&order.created_at)}</span>
            <span class="status">{status_label(order.status)}</span>
            <span class="price">{format!("${}", Money::from_stored(order.total_cents))}</span>
        </a>
    }
}

/// An order's lines as they were sold (each title from its snapshot), with the
/// total: the buyer's order page and the seller's show the same table.
#[component]
pub fn LinesAsSold(lines: Vec<shop::orders::OrderLine>, titles: Vec<String>, pictures: Vec<Option<String>>, total_cents: i64) -> impl IntoView {
    view! {
        <table class="lines">
            <thead><tr><th>"Item (as sold)"</th><th>"Qty"</th><th>"Price"</th><th>"Total"</th></tr></thead>
            <tbody>
                {lines.iter().zip(titles).zip(pictures.into_iter().chain(std::iter::repeat(None))).map(|((line, title), picture)| view! {
                    <tr>
                        <td data-testid="line-title">
                            {picture.map(|src| view! { <img class="line-picture" src=src alt="" width="48" height="48" loading="lazy" data-testid="line-picture"/> })}
                            {title}
                        </td>
                        <td>{line.quantity}</td>
                        <td>{format!("${}", Money::from_stored(line.unit_price_cents))}</td>
                        <td>{format!("${}", Money::from_stored(line.unit_price_cents * line.quantity))}</td>
                    </tr>
                }).collect_view()}
            </tbody>
            <tfoot><tr><th colspan="3">"Total"</th><th>{format!("${}", Money::from_stored(total_cents))}</th></tr></tfoot>
        </table>
    }
}
