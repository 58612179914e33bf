//! Sign-in, registration and sign-out, and the header that shows who is signed in.

use crate::state::auth::Auth;
use crate::pages::errors::form_failure;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn Header() -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <header class="site-header">
            <a class="brand" href="/">"Ninefold"</a>
            <form class="site-search" method="get" action="/search" role="search">
                <input type="search" name="q" placeholder="Search products" aria-label="Search products" maxlength="200" data-testid="search-input"/>
                <button type="submit" data-testid="search-button">"Search"</button>
            </form>
            <nav>
                <a href="/">"Shop"</a>
                <crate::pages::cart::CartLink/>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match auth.user.await {
                            Ok(Some(user)) => view! {
                                {(user.role == shop::domain::Role::Seller).then(|| view! { <a href="/seller/orders" data-testid="dashboard-link">"Dashboard"</a> })}
                                <a href="/orders" data-testid="my-orders-link">"My orders"</a>
                                <a href="/wallet" data-testid="wallet-link">"Wallet"</a>
                                {(user.role == shop::domain::Role::Admin).then(|| view! { <a href="/admin/reconcile">"Reconcile"</a> })}
                                <a href="/account" class="who" data-testid="signed-in-as">{user.name.to_string()}</a>
                                <ActionForm action=auth.sign_out attr:class="inline">
                                    <button type="submit" class="link" data-testid="sign-out">"Sign out"</button>
                                </ActionForm>
                            }.into_any(),
                            _ => view! {
                                <a href="/login" data-testid="sign-in-link">"Sign in"</a>
                                <a href="/register">"Register"</a>
                            }.into_any(),
                        }
                    })}
                </Transition>
            </nav>
        </header>
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let next = use_query_map().read_untracked().get("next").unwrap_or_default();
    let pending = auth.sign_in.pending();
    view! {
        <Title text="Sign in"/>
        <section class="form-page">
            <h1>"Sign in"</h1>
            <ActionForm action=auth.sign_in attr:class="form">
                <input type="hidden" name="next" value=next/>
                <label>"Email" <input type="email" name="email" required autocomplete="username"/></label>
                <label>"Password" <input type="password" name="password" required autocomplete="current-password"/></label>
                <button type="submit" disabled=move || pending.get()>
                    {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
            {form_failure(move || auth.sign_in.value().get())}
            <p>"New here? "<a href="/register">"Create an account"</a></p>
        </section>
    }
}

#[component]
pub fn RegisterPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let pending = auth.register.pending();
    view! {
        <Title text="Create an account"/>
        <section class="form-page">
            <h1>"Create an account"</h1>
            <ActionForm action=auth.register attr:class="form">
                <label>"Name" <input type="text" name="name" required maxlength="100" autocomplete="name"/></label>
                <label>"Email" <input type="email" name="email" required autocomplete="email"/></label>
                <label>"Password" <input type="password" name="password" required minlength="8" maxlength="128" autocomplete="new-password"/>
                    <small>"At least 8 characters."</small>
                </label>
                <fieldset>
                    <legend>"I want to"</legend>
                    <label class="choice"><input type="radio" name="role" value="buyer" checked/>" buy"</label>
                    <label class="choice"><input type="radio" name="role" value="seller"/>" sell"</label>
                </fieldset>
                <button type="submit" disabled=move || pending.get()>
                    {move || if pending.get() { "Creating your account…" } else { "Create account" }}
                </button>
            </ActionForm>
            {form_failure(move || auth.register.value().get())}
            <p>"Already have an account? "<a href="/login">"Sign in"</a></p>
        </section>
    }
}

/// The shopper's account: who they are, a new password (which ends every other
/// session), and signing out everywhere.
#[component]
pub fn AccountPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let change = ServerAction::<crate::server_fns::ChangePassword>::new();
    let pending = change.pending();
    view! {
        <Title text="Your account"/>
        <h1>"Your account"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || auth.user.get().map(|user| match user {
                Ok(Some(user)) => view! {
                    <section class="order account" data-testid="account">
                        <p>{user.name.to_string()} " · " {user.email.to_string()}</p>
                        <h2>"Change your password"</h2>
                        <ActionForm action=change attr:class="form" attr:data-testid="change-password-form">
                            <label>"Current password" <input type="password" name="current_password" required autocomplete="current-password"/></label>
                            <label>"New password (8 to 128 characters)" <input type="password" name="new_password" required minlength="8" maxlength="128" autocomplete="new-password"/></label>
                            <button type="submit" disabled=move || pending.get() data-testid="change-password">"Change password"</button>
                        </ActionForm>
                        {move || matches!(change.value().get(), Some(Ok(()))).then(|| view! {
                            <p class="notice" role="status" data-testid="password-changed">"Your password is changed. Every other device was signed out."</p>
                        })}
                        {form_failure(move || change.value().get())}
                        <h2>"Sign out everywhere"</h2>
                        <p class="muted">"Ends every session of your account, on every device, this one too."</p>
                        // A plain form: the whole page reloads signed out, on this device as on the others.
                        <form method="post" action="/fn/sign_out_everywhere" class="inline">
                            <button type="submit" class="secondary" data-testid="sign-out-everywhere">"Sign out everywhere"</button>
                        </form>
                    </section>
                }.into_any(),
                _ => crate::pages::orders::sign_in_prompt("/account".to_owned()).into_any(),
            })}
        </Transition>
    }
}
