//! API tests: the real server, in-process, on SQLite and on PostgreSQL.

mod helpers;

mod abuse;
mod accounts;
mod archive;
mod cart;
mod csrf;
mod catalog;
mod errors;
mod hardening;
mod idempotency;
mod images;
mod money;
mod waybills;
mod operations;
mod orders;
mod pages;
mod seller_index;
mod search;
mod snapshots;
