//! The cart's views: the count in the header, "Add to cart" on product pages, the
//! cart page, and the notices of a merge at sign-in (DESIGN.md, failure mode 3).
//! The browser's cart state and LocalStorage live in [`crate::state::cart`].

use crate::state::auth::Auth;
use crate::state::cart::CartState;
use crate::pages::errors::form_failure;
use crate::pages::ErrorBox;
use crate::server_fns::cart::{
    AddToCart, CartGroup, CartLineView, CheckoutSeller, SetCartLine, added_sentence, cart_count, cart_page,
};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use shop::cart::MAX_LINE_QUANTITY;
use shop::domain::{Money, ProductId};

/// One-off messages about the cart, at the top of every page: the browser's
/// notices and, after a sign-in without script, the merge the server did.
#[component]
pub fn CartNotices() -> impl IntoView {
    let state = expect_context::<CartState>();
    let query = use_query_map();
    let from_query = move || {
        let query = query.read();
        let added: usize = query.get("cart_merged")?.parse().ok()?;
        let capped: usize = query.get("cart_capped").and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut sentence = added_sentence(added);
        if capped > 0 {
            sentence.push_str(&format!(" {capped} of them {} limited by stock or the {}-per-line maximum.", if capped == 1 { "was" } else { "were" }, shop::cart::MAX_LINE_QUANTITY));
        }
        Some(sentence)
    };
    view! {
        {move || from_query().map(|text| view! { <p class="banner ok" role="status" data-testid="cart-notice">{text}</p> })}
        {move || {
            state.notices.get().into_iter().map(|text| view! { <p class="banner ok" role="status" data-testid="cart-notice">{text}</p> }).collect_view()
        }}
    }
}

/// "Cart (3)" in the header: the server-side cart plus, for a guest with script,
/// the lines in this browser.
#[component]
pub fn CartLink() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let state = expect_context::<CartState>();
    // Current after anything that may change the cart elsewhere: every navigation
    // (placing an order leaves the cart by a redirect), and coming back to this tab
    // after another one changed it.
    let location = leptos_router::hooks::use_location();
    let refocused = RwSignal::new(0u32);
    #[cfg(feature = "hydrate")]
    {
        let on_focus = window_event_listener(leptos::ev::focus, move |_| refocused.update(|n| *n += 1));
        on_cleanup(move || on_focus.remove());
    }
    let count = Resource::new(
        move || {
            (
                auth.sign_in.version().get(),
                auth.register.version().get(),
                auth.sign_out.version().get(),
                state.server_version.get(),
                location.pathname.get(),
                location.search.get(),
                refocused.get(),
            )
        },
        |_| cart_count(),
    );
    view! {
        <a href="/cart" data-testid="cart-link">
            "Cart "
            <Transition fallback=move || view! { <span class="count" data-testid="cart-count">{move || state.local_total()}</span> }>
                {move || Suspend::new(async move {
                    let server = count.await.unwrap_or(0);
                    view! { <span class="count" data-testid="cart-count">{move || server + state.local_total()}</span> }
                })}
            </Transition>
        </a>
    }
}

/// "Add to cart" on a product page. Without script the form posts to the server
/// (a server-side guest cart under a cookie); with script a guest's line goes to
/// this browser's storage and a signed-in shopper's to the account's cart.
#[component]
pub fn AddToCartForm(product_id: ProductId, price: Money, available: i64) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let state = expect_context::<CartState>();
    let add = ServerAction::<AddToCart>::new();
    let quantity_input = NodeRef::<leptos::html::Input>::new();
    let message = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(Ok(())) = add.value().get() {
            state.bump();
            message.set(Some("Added to your cart.".to_owned()));
        }
    });
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        message.set(None);
        let quantity = quantity_input.get().map(|input| input.value()).unwrap_or_else(|| "1".to_owned());
        if matches!(auth.user.get_untracked(), Some(Ok(Some(_)))) {
            add.dispatch(AddToCart { product_id: product_id.to_string(), quantity });
            return;
        }
        match quantity.trim().parse::<i64>() {
            Ok(quantity) if (1..=MAX_LINE_QUANTITY).contains(&quantity) => {
                #[cfg(feature = "hydrate")]
                let added = state.update_local(|cart| cart.add(product_id, quantity, crate::state::cart::browser::now_ms(), price.cents()));
                #[cfg(not(feature = "hydrate"))]
                let added: Option<bool> = { let _ = price; None };
                message.set(Some(match added {
                    Some(true) => "Added to your cart.".to_owned(),
                    _ => format!("Your cart is full ({} different items at most).", shop::cart::MAX_LINES),
                }));
            }
            _ => message.set(Some(format!("Choose a quantity from 1 to {MAX_LINE_QUANTITY}."))),
        }
    };
    if available <= 0 {
        return ().into_any();
    }
    view! {
        <form method="post" action=AddToCart::url() class="buy-now add-to-cart" on:submit=on_submit>
            <input type="hidden" name="product_id" value=product_id.to_string()/>
            <label>"Quantity " <input node_ref=quantity_input type="number" name="quantity" value="1" min="1" max=MAX_LINE_QUANTITY.to_string() required data-testid="add-quantity"/></label>
            <button type="submit" data-testid="add-to-cart" disabled=move || add.pending().get()>"Add to cart"</button>
        </form>
        {move || message.get().map(|text| view! { <p class="form-ok" role="status" data-testid="added-to-cart">{text} " " <a href="/cart">"View cart"</a></p> })}
        {form_failure(move || add.value().get())}
    }
    .into_any()
}

#[component]
pub fn CartPage() -> impl IntoView {
    let state = expect_context::<CartState>();
    let set_line = ServerAction::<SetCartLine>::new();
    let checkout = ServerAction::<CheckoutSeller>::new();
    Effect::new(move |_| {
        if set_line.version().get() > 0 {
            state.bump();
        }
    });
    let data = Resource::new(move || (state.local_json(), state.server_version.get()), |(browser_cart, _)| cart_page(browser_cart));
    // Products deleted since they were put in this browser's cart: drop them, and say so.
    Effect::new(move |_| {
        if let Some(Ok(page)) = data.get()
            && !page.vanished.is_empty()
        {
            state.update_local(|cart| page.vanished.iter().for_each(|id| cart.set(*id, 0)));
            let n = page.vanished.len();
            state.tell(format!("{n} saved {} no longer sold and {} removed from your cart.", if n == 1 { "item is" } else { "items are" }, if n == 1 { "was" } else { "were" }));
        }
    });
    view! {
        <Title text="Your cart"/>
        <h1>"Your cart"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading your cart…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) if page.groups.is_empty() => view! {
                        <section class="notice" data-testid="cart-empty">
                            <p>"Your cart is empty."</p>
                            <p><a class="button" href="/">"Find something you like"</a></p>
                        </section>
                    }.into_any(),
                    Ok(page) => {
                        let signed_in = page.signed_in;
                        view! {
                            {page.groups.into_iter().map(|group| view! { <SellerGroup group signed_in set_line checkout/> }).collect_view()}
                            {(!signed_in).then(|| view! {
                                <p class="muted">"Your cart is kept in this browser. Sign in and it moves to your account, and you can check out."</p>
                            })}
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
        {form_failure(move || set_line.value().get())}
        {form_failure(move || checkout.value().get())}
    }
}

#[component]
fn SellerGroup(group: CartGroup, signed_in: bool, set_line: ServerAction<SetCartLine>, checkout: ServerAction<CheckoutSeller>) -> impl IntoView {
    let pending = checkout.pending();
    let total = group.total();
    let seller = group.seller_name.clone();
    view! {
        <section class="cart-group" data-testid="cart-group">
            <h2>"Sold by " {group.seller_name.clone()}</h2>
            <table class="lines">
                <thead><tr><th>"Item"</th><th>"Price"</th><th>"Quantity"</th><th>"Total"</th></tr></thead>
                <tbody>
                    {group.lines.into_iter().map(|line| view! { <CartRow line set_line/> }).collect_view()}
                </tbody>
                <tfoot><tr><th colspan="3">"Total from " {seller.clone()}</th><th data-testid="group-total">{format!("${total}")}</th></tr></tfoot>
            </table>
            {if signed_in {
                view! {
                    <ActionForm action=checkout attr:class="inline">
                        <input type="hidden" name="seller_id" value=group.seller_id.to_string()/>
                        <button type="submit" disabled=move || pending.get() data-testid="checkout-group">{format!("Check out with {seller}")}</button>
                    </ActionForm>
                }.into_any()
            } else {
                view! { <a class="button" href="/login?next=/cart" data-testid="sign-in-to-check-out">"Sign in to check out"</a> }.into_any()
            }}
        </section>
    }
}

#[component]
fn CartRow(line: CartLineView, set_line: ServerAction<SetCartLine>) -> impl IntoView {
    let state = expect_context::<CartState>();
    let product_id = line.product_id;
    let flags = line_flags(&line);
    let quantity = line.quantity;
    let control = if line.in_browser {
        view! {
            <input type="number" min="0" max=MAX_LINE_QUANTITY.to_string() value=quantity.to_string() aria-label="Quantity" data-testid="line-quantity"
                on:change=move |event| {
                    if let Ok(quantity) = event_target_value(&event).trim().parse::<i64>() {
                        state.update_local(|cart| cart.set(product_id, quantity.clamp(0, MAX_LINE_QUANTITY)));
                    }
                }/>
            <button type="button" class="link" data-testid="remove-line" on:click=move |_| { state.update_local(|cart| cart.set(product_id, 0)); }>"Remove"</button>
        }
        .into_any()
    } else {
        view! {
            <ActionForm action=set_line attr:class="inline">
                <input type="hidden" name="product_id" value=product_id.to_string()/>
                <input type="number" name="quantity" min="0" max=MAX_LINE_QUANTITY.to_string() value=quantity.to_string() aria-label="Quantity" data-testid="line-quantity"/>
                <button type="submit" class="link">"Update"</button>
            </ActionForm>
            <ActionForm action=set_line attr:class="inline">
                <input type="hidden" name="product_id" value=product_id.to_string()/>
                <input type="hidden" name="quantity" value="0"/>
                <button type="submit" class="link" data-testid="remove-line">"Remove"</button>
            </ActionForm>
        }
        .into_any()
    };
    view! {
        <tr data-testid="cart-line" data-product-id=product_id.to_string() data-quantity=quantity.to_string()>
            <td>
                <a href=format!("/products/{product_id}")>{line.title.clone()}</a>
                {flags.into_iter().map(|flag| view! { <span class="line-flag" data-testid="line-flag">{flag}</span> }).collect_view()}
            </td>
            <td>{format!("${}", line.unit_price)}</td>
            <td class="quantity">{control}</td>
            <td>{format!("${}", line.line_total())}</td>
        </tr>
    }
}

/// What the shopper should know about a line before checking out.
fn line_flags(line: &CartLineView) -> Vec<String> {
    let mut flags = Vec::new();
    if line.available <= 0 {
        flags.push("Sold out".to_owned());
    } else if line.available < line.quantity {
        flags.push(format!("Only {} left", line.available));
    }
    if let Some(was) = line.price_was {
        let direction = if was.cents() > line.unit_price.cents() { "dropped" } else { "went up" };
        flags.push(format!("Price {direction} from ${was}"));
    }
    flags
}
