use crate::pages::{ErrorBox, NotFound};
use crate::server_fns::{get_product, list_products};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use shop::catalog::{Product, Stock};

#[component]
pub fn HomePage() -> impl IntoView {
    let query = use_query_map();
    let products = Resource::new(move || query.read().get("cursor"), list_products);
    view! {
        <Title text="Shop"/>
        <h1>"Shop"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading products…"</p> }>
            {move || Suspend::new(async move {
                match products.await {
                    Ok(page) => view! {
                        <ul class="product-grid" data-testid="product-grid">
                            {page.items.into_iter().map(|product| view! { <li><ProductCard product/></li> }).collect_view()}
                        </ul>
                        {page.next_cursor.map(|cursor| view! {
                            <p class="pager"><a class="button" href=format!("/?cursor={cursor}")>"More products"</a></p>
                        })}
                    }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub(crate) fn ProductCard(product: Product) -> impl IntoView {
    let href = format!("/products/{}", product.id);
    view! {
        <a class="product-card" href=href data-testid="product-card">
            <span class="title">{product.title.to_string()}</span>
            <span class="seller">{product.seller_name.clone()}</span>
            <span class="price">{format!("${}", product.price)}</span>
            <StockBadge stock=product.stock/>
        </a>
    }
}

#[component]
fn StockBadge(stock: Stock) -> impl IntoView {
    if stock.in_stock() {
        view! { <span class="stock in">{format!("{} in stock", stock.available)}</span> }.into_any()
    } else {
        view! { <span class="stock out">"Sold out"</span> }.into_any()
    }
}

#[component]
pub fn ProductPage() -> impl IntoView {
    let params = use_params_map();
    let product = Resource::new(move || params.read().get("id").unwrap_or_default(), get_product);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match product.await {
                    Ok(product) => view! { <ProductDetail product/> }.into_any(),
                    Err(error) if error.is_not_found() => view! { <NotFound/> }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ProductDetail(product: Product) -> impl IntoView {
    view! {
        <Title text=product.title.to_string()/>
        <article class="product" data-testid="product">
            <p class="breadcrumb"><a href="/">"Shop"</a>" / "{product.seller_name.clone()}</p>
            <h1>{product.title.to_string()}</h1>
            <p class="price" data-testid="price">{format!("${}", product.price)}</p>
            <p data-testid="stock"><StockBadge stock=product.stock/></p>
            <p class="mode">{product.inventory_mode.label()}</p>
            <crate::pages::cart::AddToCartForm product_id=product.id price=product.price available=product.stock.available/>
            <crate::pages::orders::BuyNow product_id=product.id available=product.stock.available/>
            <div class="description">{product.description.to_string()}</div>
            <p class="seller">"Sold by "{product.seller_name.clone()}</p>
        </article>
    }
}
