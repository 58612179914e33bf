//! The seller's orders: the list (from the seller index, with status tabs) and one
//! order with its waybill form and history (DESIGN.md, failure modes 5 and 9).

use super::{DashboardNav, clock_time, load_failure};
use crate::error::AppError;
use crate::pages::orders::{LinesAsSold, status_label, when};
use crate::server_fns::seller::{
    SaveWaybill, SellerOrderData, SellerOrdersData, WaybillOutcome, load_seller_order, seller_orders, waybill_history,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use shop::domain::Money;
use shop::orders::{OrderStatus, SellerOrder, Waybill, WaybillChange};

#[component]
pub fn SellerOrdersPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || query.read().get("status").filter(|s| !s.is_empty());
    let data = Resource::new(move || (filter(), query.read().get("cursor")), |(status, cursor)| seller_orders(status, cursor));
    view! {
        <Title text="Orders · Dashboard"/>
        <DashboardNav current="Orders"/>
        <h1>"Orders"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading your orders…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <OrdersList data filter=filter()/> }.into_any(),
                    Err(error) => load_failure(error, "/seller/orders".to_owned()),
                }
            })}
        </Suspense>
    }
}

#[component]
fn OrdersList(data: SellerOrdersData, filter: Option<String>) -> impl IntoView {
    let SellerOrdersData { orders, counts, count_cap } = data;
    let shown = move |n: i64| if n > count_cap { format!("{count_cap}+") } else { n.to_string() };
    let all = counts.iter().map(|(_, n)| (*n).min(count_cap)).sum::<i64>();
    let all = if counts.iter().any(|(_, n)| *n > count_cap) { format!("{all}+") } else { all.to_string() };
    let count_of = move |status: OrderStatus| counts.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n);
    let tab = |href: String, label: String, n: String, active: bool| {
        view! { <a href=href class="tab" aria-current=active.then_some("page")>{label} " " <span class="count">{n}</span></a> }
    };
    let tabs = std::iter::once(tab("/seller/orders".to_owned(), "All".to_owned(), all, filter.is_none()))
        .chain(OrderStatus::ALL.into_iter().map(|s| {
            tab(format!("/seller/orders?status={}", s.as_str()), status_label(s).to_owned(), shown(count_of(s)), filter.as_deref() == Some(s.as_str()))
        }))
        .collect_view();
    let status_query = filter.as_ref().map(|s| format!("status={s}&")).unwrap_or_default();
    let empty = orders.items.is_empty();
    view! {
        <nav class="tabs" data-testid="status-tabs">{tabs}</nav>
        <p class="muted">"This list is the seller index: it follows each change within a second or so. An order's own page is always current."</p>
        {if empty {
            view! { <p class="notice" data-testid="no-orders">{if filter.is_some() { "No orders in this status." } else { "No orders yet. They appear here as buyers place them." }}</p> }.into_any()
        } else {
            view! {
                <table class="lines dashboard" data-testid="seller-orders">
                    <thead><tr><th>"Order"</th><th>"Placed"</th><th>"Ship to"</th><th>"Items"</th><th>"Total"</th><th>"Status"</th><th>"Waybill"</th></tr></thead>
                    <tbody>{orders.items.into_iter().map(|order| view! { <OrderRow order/> }).collect_view()}</tbody>
                </table>
            }.into_any()
        }}
        {orders.next_cursor.map(|cursor| view! { <p class="pager"><a class="button" href=format!("/seller/orders?{status_query}cursor={cursor}") data-testid="older-orders">"Older orders"</a></p> })}
    }
}

#[component]
fn OrderRow(order: SellerOrder) -> impl IntoView {
    let id = order.order.id.to_string();
    let items: i64 = order.order.lines.iter().map(|l| l.quantity).sum();
    view! {
        <tr data-testid="seller-order" data-order-id=id.clone()>
            <td><a href=format!("/seller/orders/{id}")>{id.clone()}</a></td>
            <td>{when(&order.order.created_at)}</td>
            <td>{order.order.shipping_address.name.clone()}</td>
            <td>{items}</td>
            <td>{format!("${}", Money::from_stored(order.order.total_cents))}</td>
            <td data-testid="seller-order-status">{status_label(order.order.status)}
                {order.order.archived.then(|| view! { " " <span class="badge archived" data-testid="seller-order-archived">"Archived"</span> })}
            </td>
            <td>{order.order.shipping.map(|w| format!("{} {}", w.carrier, w.tracking_number)).unwrap_or_default()}</td>
        </tr>
    }
}

#[component]
pub fn SellerOrderPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let save = ServerAction::<SaveWaybill>::new();
    // Refetch after a saved waybill only: after a stale one the form, and the
    // seller's input in it, must stay as it is.
    let saved = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Some(Ok(WaybillOutcome::Saved(_))) = save.value().get() {
            saved.update(|n| *n += 1);
        }
    });
    // A stale submit made without script comes back with the entry in the query.
    let query = use_query_map();
    let kept = move || {
        let query = query.read();
        query.get("stale").map(|_| (query.get("carrier").unwrap_or_default(), query.get("tracking_number").unwrap_or_default()))
    };
    let data = Resource::new(move || (id(), saved.get()), |(id, _)| load_seller_order(id));
    // The history follows every submit, a refused one too: it shows what the seller was refused for.
    let history = Resource::new(move || (id(), save.version().get()), |(id, _)| waybill_history(id));
    view! {
        <Title text="Order · Dashboard"/>
        <DashboardNav current="Orders"/>
        <Transition fallback=|| view! { <p class="loading">"Loading the order…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <SellerOrderDetail data save history kept=kept()/> }.into_any(),
                    Err(error) => load_failure(error, format!("/seller/orders/{}", id())),
                }
            })}
        </Transition>
    }
}

#[component]
fn SellerOrderDetail(
    data: SellerOrderData,
    save: ServerAction<SaveWaybill>,
    history: Resource<Result<Vec<WaybillChange>, AppError>>,
    kept: Option<(String, String)>,
) -> impl IntoView {
    let SellerOrderData { order, titles, pictures } = data;
    let SellerOrder { order, .. } = order;
    let address = order.shipping_address.clone();
    // Paid: the first waybill ships it. Shipped or completed: it can be corrected.
    let shippable = !order.archived && order.status.accepts_waybill(order.shipping.is_some());
    view! {
        <section class="order" data-testid="seller-order-detail">
            <h1>"Order " <span data-testid="order-id">{order.id.to_string()}</span></h1>
            <p>"Status: " <strong data-testid="order-status">{status_label(order.status)}</strong> " · placed " {when(&order.created_at)}
                {order.archived.then(|| view! { " " <span class="badge archived" data-testid="order-archived">"Archived"</span> })}
            </p>
            <LinesAsSold lines=order.lines.clone() titles=titles pictures=pictures total_cents=order.total_cents/>
            <h2>"Ship to"</h2>
            <address data-testid="ship-to">
                {address.name}<br/>{address.line1}<br/>
                {(!address.line2.is_empty()).then(|| view! { {address.line2.clone()}<br/> })}
                {address.postal_code} " " {address.city}<br/>{address.country}
            </address>
            <h2>"Waybill"</h2>
            {if shippable {
                view! { <WaybillForm order_id=order.id.to_string() current=order.shipping.clone() save kept/> }.into_any()
            } else {
                view! { <p class="muted" data-testid="not-shippable">{match order.status {
                    _ if order.archived => "This order is archived: it is final, and its waybill can no longer change.",
                    OrderStatus::PendingPayment => "The buyer has not paid yet. You can ship once the order is paid.",
                    _ => "This order was cancelled: there is nothing to ship.",
                }}</p> }.into_any()
            }}
            <Transition fallback=|| ()>
                {move || Suspend::new(async move { history.await.ok().map(|history| view! { <WaybillHistory history/> }) })}
            </Transition>
            <p><a href="/seller/orders">"All orders"</a></p>
        </section>
    }
}

/// Carrier and tracking number. The hidden `expected_version` is the version
/// this form shows; if someone saved a newer one meanwhile, the submit is refused
/// and the form says what changed, keeping what the seller typed.
#[component]
fn WaybillForm(order_id: String, current: Option<Waybill>, save: ServerAction<SaveWaybill>, kept: Option<(String, String)>) -> impl IntoView {
    let first = current.is_none();
    // Refused without script: the record now on file, and the entry to keep.
    let refused = kept.as_ref().and(current.clone());
    let expected = RwSignal::new(current.as_ref().map_or(0, |w| w.version));
    Effect::new(move |_| {
        if let Some(Ok(WaybillOutcome::Stale { current })) = save.value().get() {
            expected.set(current.version);
        }
    });
    let pending = save.pending();
    let (carrier, tracking) = kept.or_else(|| current.map(|w| (w.carrier, w.tracking_number))).unwrap_or_default();
    view! {
        <ActionForm action=save attr:class="form waybill-form" attr:data-testid="waybill-form">
            <input type="hidden" name="order_id" value=order_id/>
            // The attribute serves a page without script; the property follows a refusal.
            <input type="hidden" name="expected_version" value=expected.get_untracked().to_string() prop:value=move || expected.get().to_string()/>
            <label>"Carrier" <input type="text" name="carrier" value=carrier required maxlength="60" data-testid="carrier-input"/></label>
            <label>"Tracking number" <input type="text" name="tracking_number" value=tracking required maxlength="60" data-testid="tracking-input"/></label>
            <button type="submit" disabled=move || pending.get() data-testid="save-waybill">
                {if first { "Mark as shipped" } else { "Save correction" }}
            </button>
        </ActionForm>
        {move || match save.value().get().or_else(|| refused.clone().map(|current| Ok(WaybillOutcome::Stale { current }))) {
            Some(Ok(WaybillOutcome::Stale { current })) => view! {
                <p class="form-error" role="alert" data-testid="waybill-conflict">
                    "This waybill was changed to " {current.tracking_number.clone()} " at " <time datetime=current.updated_at.clone()>{clock_time(&current.updated_at)}</time>
                    " — review and submit again"
                </p>
                <p class="muted">"Now on record: " {current.carrier} " " {current.tracking_number} ". Your entry is still in the form."</p>
            }.into_any(),
            Some(Ok(WaybillOutcome::Saved(saved))) => view! { <p class="form-ok" role="status" data-testid="waybill-saved">"Saved: " {saved.carrier} " " {saved.tracking_number} "."</p> }.into_any(),
            Some(Err(error)) => view! { <p class="form-error" role="alert" data-testid="form-error">{error.message}</p> }.into_any(),
            None => ().into_any(),
        }}
    }
}

#[component]
fn WaybillHistory(history: Vec<WaybillChange>) -> impl IntoView {
    (!history.is_empty()).then(|| {
        view! {
            <h3>"Changes"</h3>
            <table class="lines history" data-testid="waybill-history">
                <thead><tr><th>"Version"</th><th>"Carrier"</th><th>"Tracking number"</th><th>"When"</th></tr></thead>
                <tbody>
                    {history.into_iter().map(|change| view! {
                        <tr data-testid="history-row">
                            <td>{change.version}</td><td>{change.carrier}</td><td data-testid="history-tracking">{change.tracking_number}</td><td>{when(&change.changed_at)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        }
    })
}

