//! The browser's side of the cart (DESIGN.md, failure mode 3): the guest's cart in
//! LocalStorage, the signal the views refetch on, and the merge into the account
//! once the shopper is signed in.
//!
//! LocalStorage is read only in the browser, after hydration: the server-rendered
//! page never depends on it, so hydration always matches.

use crate::server_fns::cart::MergeBrowserCart;
use crate::state::auth::Auth;
use leptos::prelude::*;
use shop::stored_cart::StoredCart;

/// The browser's side of the cart, shared by the header, product pages and the cart page.
#[derive(Clone, Copy)]
pub struct CartState {
    /// The guest cart in LocalStorage: `None` until read, after hydration.
    pub local: RwSignal<Option<StoredCart>>,
    /// Bumped whenever the server-side cart changes, so what shows it refetches.
    pub server_version: RwSignal<u64>,
    /// Things the shopper should be told once (a recovered cart, a merge).
    pub notices: RwSignal<Vec<String>>,
}

impl CartState {
    pub(crate) fn local_total(&self) -> i64 {
        self.local.with(|c| c.as_ref().map_or(0, StoredCart::total_quantity))
    }

    pub(crate) fn local_json(&self) -> String {
        self.local.with(|c| c.as_ref().filter(|c| !c.lines.is_empty()).map(StoredCart::to_json).unwrap_or_default())
    }

    pub(crate) fn bump(&self) {
        self.server_version.update(|v| *v += 1);
    }

    pub(crate) fn tell(&self, notice: String) {
        self.notices.update(|n| n.push(notice));
    }

    /// Re-reads the stored cart (another tab may have changed it), applies `change`
    /// and stores the result.
    pub(crate) fn update_local<T>(&self, change: impl FnOnce(&mut StoredCart) -> T) -> Option<T> {
        #[cfg(feature = "hydrate")]
        {
            let (mut cart, _) = browser::load();
            let result = change(&mut cart);
            browser::save(&cart);
            self.local.set(Some(cart));
            Some(result)
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = change;
            None
        }
    }
}

/// LocalStorage access through gloo-storage; only in the browser.
#[cfg(feature = "hydrate")]
pub(crate) mod browser {
    use gloo_storage::errors::StorageError;
    use gloo_storage::{LocalStorage, Storage};
    use shop::stored_cart::{Recovery, STORAGE_KEY, StoredCart};

    pub fn load() -> (StoredCart, Recovery) {
        let raw = match LocalStorage::get::<serde_json::Value>(STORAGE_KEY) {
            Ok(value) => Some(value.to_string()),
            Err(StorageError::KeyNotFound(_)) => None,
            // Not JSON at all: recovery reports it unreadable.
            Err(_) => Some("\u{0}".to_owned()),
        };
        StoredCart::recover(raw.as_deref(), new_merge_id)
    }

    pub fn save(cart: &StoredCart) {
        if cart.lines.is_empty() {
            LocalStorage::delete(STORAGE_KEY);
        } else if let Err(error) = LocalStorage::set(STORAGE_KEY, cart) {
            leptos::logging::warn!("the cart could not be saved in this browser: {error}");
        }
    }

    /// Forgets the stored cart, unless it has become another cart (another merge id) meanwhile.
    pub fn clear_if(merge_id: &str) {
        let (cart, _) = load();
        if cart.merge_id == merge_id || cart.lines.is_empty() {
            LocalStorage::delete(STORAGE_KEY);
        }
    }

    /// 104 random bits: unique per browser cart, which is all a merge id needs.
    pub fn new_merge_id() -> String {
        let part = || (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        format!("b-{:013x}{:013x}", part(), part())
    }

    pub fn now_ms() -> i64 {
        js_sys::Date::now() as i64
    }
}

/// Provides [`CartState`] and starts the browser's part: read the stored cart
/// after hydration, and merge it into the account once the shopper is signed in.
pub fn provide_cart() {
    let auth = expect_context::<Auth>();
    let state = CartState { local: RwSignal::new(None), server_version: RwSignal::new(0), notices: RwSignal::new(Vec::new()) };
    provide_context(state);
    let merge = ServerAction::<MergeBrowserCart>::new();
    // The merge id last sent: the stored cart is forgotten only if it still is that cart.
    let sent_merge_id = RwSignal::new(None::<String>);

    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            let (cart, recovery) = browser::load();
            if let Some(notice) = recovery.notice() {
                browser::save(&cart);
                state.tell(notice);
            }
            state.local.set(Some(cart));
        }
    });
    Effect::new(move |_| {
        let signed_in = matches!(auth.user.get(), Some(Ok(Some(_))));
        let Some((merge_id, json)) = state.local.with(|c| c.as_ref().filter(|c| !c.lines.is_empty()).map(|c| (c.merge_id.clone(), c.to_json()))) else {
            return;
        };
        if signed_in && !merge.pending().get_untracked() {
            sent_merge_id.set(Some(merge_id.clone()));
            merge.dispatch(MergeBrowserCart { merge_id, browser_cart: json });
        }
    });
    Effect::new(move |_| match merge.value().get() {
        Some(Ok(notice)) => {
            #[cfg(feature = "hydrate")]
            {
                if let Some(merge_id) = sent_merge_id.get_untracked() {
                    browser::clear_if(&merge_id);
                }
                state.local.set(Some(StoredCart::empty(browser::new_merge_id())));
            }
            state.bump();
            if let Some(sentence) = notice.sentence() {
                state.tell(sentence);
            }
            for capped in notice.capped {
                state.tell(capped);
            }
        }
        Some(Err(error)) if error.status != 401 => {
            state.tell("Your cart from before you signed in is kept in this browser; we will add it to your account on your next visit.".to_owned());
        }
        _ => {}
    });
}

