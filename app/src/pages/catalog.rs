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
            {product.images.first().cloned().map(|image| view! { <Picture image size=PictureSize::Card/> })}
            <span class="title">{product.title.to_string()}</span>
            <span class="seller">{product.seller_name.clone()}</span>
            <span class="price">{format!("${}", product.price)}</span>
            <StockBadge stock=product.stock/>
        </a>
    }
}

/// Which derived size of a picture a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PictureSize {
    Card,
    Page,
}

/// A product picture at `size`, with its width and height (so the page does not
/// jump) and lazy loading; until the image job has made that size, a placeholder
/// of the same shape.
#[component]
pub(crate) fn Picture(image: shop::catalog::ProductImage, size: PictureSize) -> impl IntoView {
    let (longest, src) = match size {
        PictureSize::Card => (480u32, image.card_url.clone()),
        PictureSize::Page => (1200u32, image.page_url.clone()),
    };
    let scale = f64::from(longest) / f64::from(image.width.max(image.height).max(1));
    let (width, height) = if scale < 1.0 {
        (((f64::from(image.width) * scale).round() as u32).max(1), ((f64::from(image.height) * scale).round() as u32).max(1))
    } else {
        (image.width.max(1), image.height.max(1))
    };
    let class = match size {
        PictureSize::Card => "picture card-picture",
        PictureSize::Page => "picture page-picture",
    };
    match src {
        Some(src) => view! {
            <img class=class src=src alt=image.alt.clone() width=width.to_string() height=height.to_string() loading="lazy" decoding="async" data-testid="product-picture"/>
        }.into_any(),
        None => view! {
            <svg class=format!("{class} placeholder") viewBox=format!("0 0 {width} {height}") width=width.to_string() height=height.to_string() role="img"
                aria-label=image.alt.clone() data-testid="picture-placeholder"></svg>
        }.into_any(),
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
            {product.images.first().cloned().map(|image| view! { <Picture image size=PictureSize::Page/> })}
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

/// What the search form holds, read from the page's query string.
#[derive(Debug, Clone, Default, PartialEq)]
struct SearchForm {
    q: String,
    category: String,
    min_price: String,
    max_price: String,
    in_stock: bool,
    sort: String,
    cursor: String,
}

impl SearchForm {
    fn from_query(query: &leptos_router::params::ParamsMap, fixed_category: Option<&str>) -> Self {
        let get = |key: &str| query.get(key).unwrap_or_default();
        Self {
            q: get("q"),
            category: fixed_category.map(str::to_owned).unwrap_or_else(|| get("category")),
            min_price: get("min_price"),
            max_price: get("max_price"),
            in_stock: !get("in_stock").is_empty(),
            sort: get("sort"),
            cursor: get("cursor"),
        }
    }

    /// The query string of this form (without the cursor), for links.
    fn query_string(&self, fixed_category: bool) -> String {
        let mut pairs = Vec::new();
        let mut add = |key: &str, value: &str| {
            if !value.is_empty() {
                pairs.push(format!("{key}={}", urlencoding_lite(value)));
            }
        };
        add("q", &self.q);
        if !fixed_category {
            add("category", &self.category);
        }
        add("min_price", &self.min_price);
        add("max_price", &self.max_price);
        add("in_stock", if self.in_stock { "1" } else { "" });
        add("sort", &self.sort);
        pairs.join("&")
    }

    fn filtered(&self, fixed_category: bool) -> bool {
        (!fixed_category && !self.category.is_empty()) || !self.min_price.is_empty() || !self.max_price.is_empty() || self.in_stock
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn urlencoding_lite(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Search results with the filters as a plain GET form (works without script).
#[component]
pub fn SearchPage() -> impl IntoView {
    view! { <Results fixed_category=None/> }
}

/// One category's products: `/c/{slug}`.
#[component]
pub fn CategoryPage() -> impl IntoView {
    let params = use_params_map();
    view! {
        {move || {
            let slug = params.read().get("slug").unwrap_or_default();
            view! { <Results fixed_category=Some(slug)/> }
        }}
    }
}

#[component]
fn Results(fixed_category: Option<String>) -> impl IntoView {
    let query = use_query_map();
    let fixed = fixed_category.clone();
    let form = Memo::new(move |_| SearchForm::from_query(&query.read(), fixed.as_deref()));
    let results = Resource::new(move || form.get(), |f| {
        crate::server_fns::search_products(Some(f.q), Some(f.category), Some(f.min_price), Some(f.max_price), Some(if f.in_stock { "1".to_owned() } else { String::new() }), Some(f.sort), Some(f.cursor))
    });
    let is_category = fixed_category.is_some();
    let here = match &fixed_category {
        Some(slug) => format!("/c/{slug}"),
        None => "/search".to_owned(),
    };
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Searching…"</p> }>
            {move || {
                let here = here.clone();
                Suspend::new(async move {
                    let form = form.get_untracked();
                    match results.await {
                        Ok(view) => {
                            let heading = match &view.category_name {
                                Some(name) => name.clone(),
                                None if form.q.is_empty() => "All products".to_owned(),
                                None => format!("Results for “{}”", form.q),
                            };
                            let query_string = form.query_string(is_category);
                            let clear = if form.q.is_empty() { here.clone() } else { format!("{here}?q={}", urlencoding_lite(&form.q)) };
                            view! {
                                <Title text=heading.clone()/>
                                <h1 data-testid="results-heading">{heading}</h1>
                                {view.problem.clone().map(|problem| view! { <p class="form-error" role="alert" data-testid="search-problem">{problem}</p> })}
                                <FilterForm form=form.clone() categories=view.categories.clone() is_category action=here.clone()/>
                                {if view.problem.is_some() {
                                    ().into_any()
                                } else if view.products.items.is_empty() {
                                    view! {
                                        <section class="notice" data-testid="no-results">
                                            <p>"Nothing matches."</p>
                                            {(form.filtered(is_category)).then(|| view! { <p><a href=clear.clone() data-testid="clear-filters">"Clear the filters"</a> " and search again."</p> })}
                                            <p><a href="/">"Browse all products"</a></p>
                                        </section>
                                    }.into_any()
                                } else {
                                    view! {
                                        <ul class="product-grid" data-testid="product-grid">
                                            {view.products.items.into_iter().map(|product| view! { <li><ProductCard product/></li> }).collect_view()}
                                        </ul>
                                        {view.products.next_cursor.map(|cursor| {
                                            let sep = if query_string.is_empty() { "" } else { "&" };
                                            view! { <p class="pager"><a class="button" data-testid="more-results" href=format!("{here}?{query_string}{sep}cursor={cursor}")>"More products"</a></p> }
                                        })}
                                    }.into_any()
                                }}
                            }.into_any()
                        }
                        Err(error) if error.is_not_found() => view! { <NotFound/> }.into_any(),
                        Err(error) => view! { <ErrorBox error/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn FilterForm(form: SearchForm, categories: Vec<shop::catalog::Category>, is_category: bool, action: String) -> impl IntoView {
    let searching = !form.q.is_empty();
    let sorts = shop::search::ProductSort::CHOICES.into_iter().filter(move |s| searching || *s != shop::search::ProductSort::Relevance);
    view! {
        <form class="filters" method="get" action=action data-testid="filters">
            <label>"Search " <input type="search" name="q" value=form.q.clone() maxlength="200" data-testid="filter-q"/></label>
            {(!is_category).then(|| view! {
                <label>"Category "
                    <select name="category" data-testid="filter-category">
                        <option value="" selected=form.category.is_empty()>"Any"</option>
                        {categories.into_iter().map(|c| {
                            let selected = c.slug == form.category;
                            view! { <option value=c.slug.clone() selected=selected>{c.name}</option> }
                        }).collect_view()}
                    </select>
                </label>
            })}
            <label>"From $" <input type="number" name="min_price" min="0" step="0.01" value=form.min_price.clone() data-testid="filter-min-price"/></label>
            <label>"to $" <input type="number" name="max_price" min="0" step="0.01" value=form.max_price.clone() data-testid="filter-max-price"/></label>
            <label class="check"><input type="checkbox" name="in_stock" value="1" checked=form.in_stock data-testid="filter-in-stock"/>" In stock only"</label>
            <label>"Sort "
                <select name="sort" data-testid="filter-sort">
                    {sorts.map(|s| {
                        let selected = form.sort == s.as_str() || (form.sort.is_empty() && s == if searching { shop::search::ProductSort::Relevance } else { shop::search::ProductSort::Newest });
                        view! { <option value=s.as_str() selected=selected>{s.label()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="submit" data-testid="apply-filters">"Apply"</button>
        </form>
    }
}
