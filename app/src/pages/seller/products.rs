//! The seller's products: list, create, edit (with a stale-edit message) and restock.

use super::{DashboardNav, SellersOnly, load_failure};
use crate::pages::errors::form_failure;
use crate::pages::orders::sign_in_prompt;
use crate::pages::ErrorBox;
use crate::server_fns::seller::{
    ListNewProduct, ProductEditOutcome, Restock, SaveProduct,
    seller_product, seller_products,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use shop::catalog::Product;
use shop::domain::InventoryMode;

fn mode_label(mode: InventoryMode) -> &'static str {
    match mode {
        InventoryMode::Reserve => "Reserve for 30 minutes at order, sell at payment",
        InventoryMode::OnOrder => "Sell at order",
        InventoryMode::OnPayment => "Sell at payment",
    }
}

#[component]
pub fn SellerProductsPage() -> impl IntoView {
    let query = use_query_map();
    let products = Resource::new(move || query.read().get("cursor"), seller_products);
    view! {
        <Title text="Products · Dashboard"/>
        <DashboardNav current="Products"/>
        <h1>"Products"</h1>
        <p><a class="button" href="/seller/products/new" data-testid="new-product">"List a new product"</a></p>
        <Suspense fallback=|| view! { <p class="loading">"Loading your products…"</p> }>
            {move || Suspend::new(async move {
                match products.await {
                    Ok(page) if page.items.is_empty() => view! { <p class="notice">"You have not listed anything yet."</p> }.into_any(),
                    Ok(page) => view! {
                        <table class="lines dashboard" data-testid="seller-products">
                            <thead><tr><th>"Product"</th><th>"Price"</th><th>"Available"</th><th>"Reserved"</th><th>"Sold"</th><th>"Version"</th></tr></thead>
                            <tbody>
                                {page.items.into_iter().map(|p| view! {
                                    <tr data-testid="seller-product">
                                        <td><a href=format!("/seller/products/{}", p.id)>{p.title.to_string()}</a></td>
                                        <td>{format!("${}", p.price)}</td>
                                        <td>{p.stock.available}</td><td>{p.stock.reserved}</td><td>{p.stock.sold}</td><td>{p.version}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        {page.next_cursor.map(|cursor| view! { <p class="pager"><a class="button" href=format!("/seller/products?cursor={cursor}")>"More products"</a></p> })}
                    }.into_any(),
                    Err(error) => load_failure(error, "/seller/products".to_owned()),
                }
            })}
        </Suspense>
    }
}

fn mode_options(selected: InventoryMode) -> impl IntoView {
    [InventoryMode::Reserve, InventoryMode::OnOrder, InventoryMode::OnPayment]
        .into_iter()
        .map(|mode| view! { <option value=mode.as_str() selected=mode == selected>{mode_label(mode)}</option> })
        .collect_view()
}

/// The categories as checkboxes (`categories[]`), `checked` ticked.
#[component]
fn CategoryChoices(checked: Vec<String>) -> impl IntoView {
    let categories = Resource::new(|| (), |_| crate::server_fns::seller::all_categories());
    view! {
        <fieldset class="categories" data-testid="category-choices">
            <legend>"Categories"</legend>
            <Suspense fallback=|| ()>
                {move || {
                    let checked = checked.clone();
                    Suspend::new(async move {
                        categories.await.unwrap_or_default().into_iter().map(|c| {
                            let on = checked.contains(&c.slug);
                            view! { <label class="check"><input type="checkbox" name="categories[]" value=c.slug.clone() checked=on/>" " {c.name}</label> }
                        }).collect_view()
                    })
                }}
            </Suspense>
        </fieldset>
    }
}

/// The product's pictures and the form that adds one: a plain multipart form
/// (posted to the server, back here after), so it works with and without script.
#[component]
fn ProductImages(product: Product) -> impl IntoView {
    let query = use_query_map();
    let added = move || query.read().get("image").is_some_and(|v| v == "added");
    let refused = move || query.read().get("image_error");
    view! {
        <h2>"Pictures"</h2>
        {move || added().then(|| view! { <p class="form-ok" role="status" data-testid="image-added">"Picture added. Its sizes for the shop are being made."</p> })}
        {move || refused().map(|reason| view! { <p class="form-error" role="alert" data-testid="image-error">{reason}</p> })}
        <ul class="image-list" data-testid="image-list">
            {product.images.iter().cloned().map(|image| view! {
                <li><crate::pages::catalog::Picture image size=crate::pages::catalog::PictureSize::Card/></li>
            }).collect_view()}
        </ul>
        <form class="form inline-form" method="post" enctype="multipart/form-data" action=format!("/seller/products/{}/images", product.id) data-testid="image-form">
            <label>"Picture (JPEG, PNG or WebP, up to 5 MB)" <input type="file" name="file" accept="image/jpeg,image/png,image/webp" required data-testid="image-file"/></label>
            <label>"Description for screen readers" <input type="text" name="alt" maxlength="200" data-testid="image-alt"/></label>
            <button type="submit" data-testid="upload-image">"Add picture"</button>
        </form>
    }
}

#[component]
pub fn NewProductPage() -> impl IntoView {
    let auth = expect_context::<crate::state::auth::Auth>();
    view! {
        <Title text="New product · Dashboard"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(user)) if user.role == shop::domain::Role::Seller => view! { <NewProductForm/> }.into_any(),
                    Ok(Some(_)) => view! { <SellersOnly/> }.into_any(),
                    Ok(None) => sign_in_prompt("/seller/products/new".to_owned()).into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn NewProductForm() -> impl IntoView {
    let create = ServerAction::<ListNewProduct>::new();
    let pending = create.pending();
    view! {
        <DashboardNav current="Products"/>
        <section class="form-page wide">
            <h1>"List a new product"</h1>
            <ActionForm action=create attr:class="form" attr:data-testid="new-product-form">
                <label>"Title" <input type="text" name="title" required maxlength="200"/></label>
                <label>"Description" <textarea name="description" rows="4" maxlength="5000"></textarea></label>
                <label>"Price (USD)" <input type="text" name="price" required inputmode="decimal" placeholder="12.50"/></label>
                <label>"Units in stock" <input type="number" name="stock" required min="0" value="0"/></label>
                <label>"Stock is taken" <select name="inventory_mode">{mode_options(InventoryMode::default())}</select></label>
                <CategoryChoices checked=Vec::new()/>
                <button type="submit" disabled=move || pending.get() data-testid="create-product">"List it"</button>
            </ActionForm>
            {form_failure(move || create.value().get())}
        </section>
    }
}

#[component]
pub fn EditProductPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let save = ServerAction::<SaveProduct>::new();
    let restock = ServerAction::<Restock>::new();
    let saved = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Some(Ok(ProductEditOutcome::Saved(_))) = save.value().get() {
            saved.update(|n| *n += 1);
        }
    });
    let product = Resource::new(move || (id(), saved.get(), restock.version().get()), |(id, _, _)| seller_product(id));
    view! {
        <Title text="Edit product · Dashboard"/>
        <DashboardNav current="Products"/>
        {move || query.read().get("created").map(|_| view! { <p class="banner ok" data-testid="product-created">"Listed. Buyers can order it now."</p> })}
        <Transition fallback=|| view! { <p class="loading">"Loading the product…"</p> }>
            {move || Suspend::new(async move {
                match product.await {
                    Ok(product) => view! { <ProductEditor product save restock/> }.into_any(),
                    Err(error) => load_failure(error, format!("/seller/products/{}", id())),
                }
            })}
        </Transition>
    }
}

#[component]
fn ProductEditor(product: Product, save: ServerAction<SaveProduct>, restock: ServerAction<Restock>) -> impl IntoView {
    let expected = RwSignal::new(product.version);
    Effect::new(move |_| {
        if let Some(Ok(ProductEditOutcome::Stale { current })) = save.value().get() {
            expected.set(current.version);
        }
    });
    let (saving, restocking) = (save.pending(), restock.pending());
    let (id, restock_id) = (product.id.to_string(), product.id.to_string());
    let price = product.price.to_string();
    let pictures = product.clone();
    view! {
        <section class="form-page wide" data-testid="product-editor">
            <h1>{product.title.to_string()}</h1>
            <p class="muted">
                "In stock " <strong data-testid="available">{product.stock.available}</strong>
                " · reserved " {product.stock.reserved} " · sold " {product.stock.sold}
                " · " <a href=format!("/products/{}", product.id)>"View in the shop"</a>
            </p>
            <ActionForm action=save attr:class="form" attr:data-testid="edit-product-form">
                <input type="hidden" name="product_id" value=id/>
                <input type="hidden" name="expected_version" value=expected.get_untracked().to_string() prop:value=move || expected.get().to_string()/>
                <label>"Title" <input type="text" name="title" value=product.title.to_string() required maxlength="200" data-testid="title-input"/></label>
                <label>"Description" <textarea name="description" rows="4" maxlength="5000">{product.description.to_string()}</textarea></label>
                <label>"Price (USD)" <input type="text" name="price" value=price required inputmode="decimal" data-testid="price-input"/></label>
                <label>"Stock is taken" <select name="inventory_mode">{mode_options(product.inventory_mode)}</select></label>
                <CategoryChoices checked=product.categories.clone()/>
                <small>"Orders already placed keep the title, description and price they were sold with."</small>
                <button type="submit" disabled=move || saving.get() data-testid="save-product">"Save changes"</button>
            </ActionForm>
            {move || match save.value().get() {
                Some(Ok(ProductEditOutcome::Stale { current })) => view! {
                    <p class="form-error" role="alert" data-testid="product-conflict">
                        "This product was changed meanwhile (now “" {current.title.to_string()} "” at $" {current.price.to_string()} ") — review and save again"
                    </p>
                }.into_any(),
                Some(Ok(ProductEditOutcome::Saved(_))) => view! { <p class="form-ok" role="status" data-testid="product-saved">"Saved."</p> }.into_any(),
                Some(Err(error)) => view! { <p class="form-error" role="alert" data-testid="form-error">{error.message}</p> }.into_any(),
                None => ().into_any(),
            }}
            <ProductImages product=pictures/>
            <h2>"Restock"</h2>
            <ActionForm action=restock attr:class="form inline-form" attr:data-testid="restock-form">
                <input type="hidden" name="product_id" value=restock_id/>
                <label>"Units received" <input type="number" name="quantity" required min="1" value="1" data-testid="restock-quantity"/></label>
                <button type="submit" disabled=move || restocking.get() data-testid="restock">"Add to stock"</button>
            </ActionForm>
            {form_failure(move || restock.value().get().map(|r| r.map(drop)))}
        </section>
    }
}
