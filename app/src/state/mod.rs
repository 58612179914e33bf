//! State the pages share in the browser (and render from on the server): not pages.

pub mod auth;
pub mod cart;
