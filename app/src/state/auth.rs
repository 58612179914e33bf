//! Who is signed in, shared by the header and the sign-in forms.

use crate::error::AppError;
use crate::server_fns::{Register, SignIn, SignOut, current_user};
use leptos::prelude::*;
use shop::accounts::User;

/// The auth actions and the current user, shared by the header and the forms.
/// The user is refetched whenever one of the actions completes.
#[derive(Clone, Copy)]
pub struct Auth {
    pub sign_in: ServerAction<SignIn>,
    pub register: ServerAction<Register>,
    pub sign_out: ServerAction<SignOut>,
    pub user: Resource<Result<Option<User>, AppError>>,
}

pub fn provide_auth() {
    let sign_in = ServerAction::<SignIn>::new();
    let register = ServerAction::<Register>::new();
    let sign_out = ServerAction::<SignOut>::new();
    let user = Resource::new(
        move || (sign_in.version().get(), register.version().get(), sign_out.version().get()),
        |_| current_user(),
    );
    provide_context(Auth { sign_in, register, sign_out, user });
}

