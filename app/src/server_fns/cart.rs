//! The cart's server functions: the signed-in cart, the server-side guest cart
//! (for clients without script, under the `nf_cart` cookie), and the merge of the
//! browser's guest cart at sign-in.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shop::domain::ProductId;

pub use shop::cart::{CartGroup, CartLineView};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartPageData {
    pub signed_in: bool,
    pub groups: Vec<CartGroup>,
    /// Browser lines whose product no longer exists: the page drops them and says so.
    pub vanished: Vec<ProductId>,
}

/// What a merge at sign-in did, in words for the shopper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeNotice {
    pub added: usize,
    /// "Title: 3 of 5 kept" for each line the caps cut down.
    pub capped: Vec<String>,
    pub already_applied: bool,
}

impl MergeNotice {
    pub fn sentence(&self) -> Option<String> {
        if self.already_applied || (self.added == 0 && self.capped.is_empty()) {
            return None;
        }
        Some(added_sentence(self.added))
    }
}

/// "2 items from before you signed in were added to your cart."
pub fn added_sentence(added: usize) -> String {
    match added {
        1 => "1 item from before you signed in was added to your cart.".to_owned(),
        n => format!("{n} items from before you signed in were added to your cart."),
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::super::ssr::{caller, cookie_policy, set_cookie, shop};
    use crate::error::AppError;
    use shop::secrets::CartToken;
    use shop::services::carts::CartOwner;

    /// The guest cart cookie, if well formed. A garbage cookie is no cart (the
    /// page still works); the next write replaces it.
    pub fn guest_token() -> Option<CartToken> {
        let parts = leptos::prelude::use_context::<http::request::Parts>()?;
        web::presented_cart_cookie(&parts.headers).ok().flatten()
    }

    /// Whose cart this request is about, if anyone's yet.
    pub async fn owner() -> Result<Option<CartOwner>, AppError> {
        Ok(shop()?.carts.owner(caller().await?, guest_token()).await?)
    }

    /// As [`owner`], opening a guest cart (and setting its cookie) when there is none.
    pub async fn owner_or_new_guest() -> Result<CartOwner, AppError> {
        let (owner, opened) = shop()?.carts.owner_or_new_guest(caller().await?, guest_token()).await?;
        if let Some(token) = opened {
            set_cookie(cookie_policy().issue_cart(&token));
        }
        Ok(owner)
    }

    pub fn parse_quantity(raw: &str) -> Result<i64, AppError> {
        Ok(shop::cart::parse_line_quantity("quantity", shop::domain::whole_number("quantity", raw)?)?)
    }

    pub fn parse_product(raw: &str) -> Result<shop::domain::ProductId, AppError> {
        Ok(shop::error::id_or_not_found(raw, "product")?)
    }
}

/// How many items the server-side cart holds (the signed-in cart, or the guest
/// cart under the cookie).
#[server(prefix = "/fn", endpoint = "cart_count")]
pub async fn cart_count() -> Result<i64, AppError> {
    let Some(owner) = ssr::owner().await? else { return Ok(0) };
    let lines = super::ssr::shop()?.carts.lines(&owner).await?;
    Ok(lines.iter().map(|l| l.quantity).sum())
}

/// Adds to the server-side cart: a product page's form without script, or any
/// signed-in shopper. Without script the browser returns to the page it came from.
#[server(prefix = "/fn", endpoint = "add_to_cart")]
pub async fn add_to_cart(product_id: String, quantity: String) -> Result<(), AppError> {
    let product_id = ssr::parse_product(&product_id)?;
    let quantity = ssr::parse_quantity(&quantity)?;
    if quantity == 0 {
        return Err(shop::domain::FieldError::new("quantity", "must be at least 1").into());
    }
    let owner = ssr::owner_or_new_guest().await?;
    super::ssr::shop()?.carts.add_line(&owner, product_id, quantity).await?;
    Ok(())
}

/// Sets a server-side cart line's quantity; 0 removes it.
#[server(prefix = "/fn", endpoint = "set_cart_line")]
pub async fn set_cart_line(product_id: String, quantity: String) -> Result<(), AppError> {
    let product_id = ssr::parse_product(&product_id)?;
    let quantity = ssr::parse_quantity(&quantity)?;
    let owner = ssr::owner_or_new_guest().await?;
    super::ssr::shop()?.carts.set_line(&owner, product_id, quantity).await?;
    Ok(())
}

/// The cart page: the server-side cart plus the browser's guest lines
/// (`browser_cart`, the stored JSON; empty when there is none), with live
/// prices and stock, grouped by seller.
#[server(prefix = "/fn", endpoint = "cart_page")]
pub async fn cart_page(browser_cart: String) -> Result<CartPageData, AppError> {
    use shop::stored_cart::StoredCart;
    let owner = ssr::owner().await?;
    let (browser, _) = StoredCart::recover(Some(&browser_cart), String::new);
    let cart = super::ssr::shop()?.carts.grouped(owner.as_ref(), &browser.lines).await?;
    let signed_in = matches!(owner, Some(shop::services::carts::CartOwner::User(_)));
    Ok(CartPageData { signed_in, groups: cart.groups, vanished: cart.vanished })
}

/// Merges this browser's guest cart (and any server-side guest cart) into the
/// signed-in shopper's cart, once per `merge_id`: a second tab, a retry or a lost
/// response applies nothing twice. The browser clears its copy only once this
/// answers.
#[server(prefix = "/fn", endpoint = "merge_browser_cart")]
pub async fn merge_browser_cart(merge_id: String, browser_cart: String) -> Result<MergeNotice, AppError> {
    use shop::stored_cart::StoredCart;
    let user = super::ssr::caller().await?.ok_or_else(|| AppError::new(401, "unauthenticated", "Sign in to keep your cart."))?;
    let merge_id = shop::cart::parse_merge_id("merge_id", &merge_id)?;
    let (browser, _) = StoredCart::recover(Some(&browser_cart), String::new);
    let guest = ssr::guest_token();
    let shop = super::ssr::shop()?;
    let (_, report) = shop.carts.merge(&user, &merge_id, &browser.lines, guest.as_ref()).await?;
    if guest.is_some() {
        super::ssr::set_cookie(super::ssr::cookie_policy().clear_cart());
    }
    notice_of(&shop, report).await
}

/// Opens a checkout for one seller's lines of the signed-in cart.
#[server(prefix = "/fn", endpoint = "checkout_seller")]
pub async fn checkout_seller(seller_id: String) -> Result<(), AppError> {
    let user = super::ssr::caller().await?.ok_or_else(|| AppError::new(401, "unauthenticated", "Sign in to check out."))?;
    let seller_id = seller_id.trim().parse().map_err(|_| shop::domain::FieldError::new("seller_id", "is not a seller"))?;
    let checkout = super::ssr::shop()?.carts.check_out_seller(&user, seller_id).await?;
    leptos_axum::redirect(&format!("/checkout/{}", checkout.order_id));
    Ok(())
}

/// Merges the server-side guest cart under the cookie into the account that just
/// signed in, and forgets the cookie. Its merge id is derived from the cart's
/// token, so a repeated sign-in cannot apply it twice.
#[cfg(feature = "ssr")]
pub(crate) async fn merge_guest_cookie_cart(user: &shop::accounts::User) -> Result<Option<MergeNotice>, AppError> {
    let Some(token) = ssr::guest_token() else { return Ok(None) };
    let shop = super::ssr::shop()?;
    let (_, report) = shop.carts.merge_guest_cart(user, &token).await?;
    super::ssr::set_cookie(super::ssr::cookie_policy().clear_cart());
    Ok(Some(notice_of(&shop, report).await?))
}

#[cfg(feature = "ssr")]
async fn notice_of(shop: &shop::Shop, report: shop::cart::MergeReport) -> Result<MergeNotice, AppError> {
    let ids: Vec<ProductId> = report.capped.iter().map(|c| c.product_id).collect();
    let products = shop.catalog.get_many(&ids).await?;
    let capped = report
        .capped
        .iter()
        .map(|c| {
            let title = products.iter().find(|p| p.id == c.product_id).map_or_else(|| "A product that is no longer sold".to_owned(), |p| p.title.to_string());
            if c.kept == 0 {
                format!("{title}: could not be added")
            } else {
                format!("{title}: {} of {} kept (limited by stock or the {}-per-line maximum)", c.kept, c.requested, shop::cart::MAX_LINE_QUANTITY)
            }
        })
        .collect();
    Ok(MergeNotice { added: report.lines_added, capped, already_applied: report.already_applied })
}
