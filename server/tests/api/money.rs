//! Wallets, payment, refunds, receipts and reconciliation (DESIGN.md, failure
//! mode 6), attacked with concurrent requests on both backends.

use crate::helpers::{Reply, TestApp};
use futures::future::join_all;
use serde_json::{Value, json};
use shop::db::Backend;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

crate::on_both_backends!(
    top_ups_are_idempotent_and_bad_amounts_change_nothing,
    a_hundred_concurrent_pay_calls_pay_once,
    a_balance_for_ten_orders_pays_exactly_ten_of_a_hundred,
    pay_cancel_ship_and_receive_move_money_between_the_right_accounts,
    during_a_mixed_concurrent_run_money_is_conserved_and_reconciles,
    the_journal_refuses_update_and_delete,
    read_then_write_loses_updates_that_conditional_updates_keep,
    payment_after_stock_is_gone_is_refused_and_moves_nothing,
    reconciliation_is_admin_only_and_reports_a_tampered_balance,
    a_payment_held_in_the_shared_escrow_of_old_is_refunded_and_released_from_it,
    payments_to_one_seller_at_once_share_transactions_and_each_moves_once,
    a_batched_update_locks_its_rows_in_key_order_whatever_order_they_come_in,
);

const PRICE: i64 = 700;

struct Shop {
    seller: String,
    product: i64,
}

async fn shop_with(app: &TestApp, name: &str, stock: i64, mode: &str) -> Shop {
    let (seller, _) = app.signed_in(&format!("{name}-seller@example.com"), "seller").await;
    let reply = app.post("/api/v1/seller/products", Some(&seller), &json!({"title": "Widget", "price_cents": PRICE, "stock": stock, "inventory_mode": mode})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    Shop { seller, product: reply.body["id"].as_i64().unwrap() }
}

fn address() -> Value {
    json!({"name": "Ann Buyer", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"})
}

/// Opens a checkout and places the order; returns the order id.
async fn order(app: &TestApp, buyer: &str, product: i64, quantity: i64) -> String {
    let opened = app.post("/api/v1/checkout", Some(buyer), &json!({"lines": [{"product_id": product, "quantity": quantity}]})).await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    let body = json!({"order_id": opened.body["order_id"], "checkout_token": opened.body["checkout_token"], "lines": opened.body["lines"], "shipping_address": address()});
    let placed = app.post("/api/v1/orders", Some(buyer), &body).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    placed.body["id"].as_str().unwrap().to_owned()
}

async fn top_up(app: &TestApp, buyer: &str, cents: i64, key: &str) -> Reply {
    let request = app.client.post(app.url("/api/v1/wallet/top-up")).bearer_auth(buyer).header("idempotency-key", key).json(&json!({"amount_cents": cents}));
    Reply::read(request.send().await.unwrap()).await
}

async fn pay(app: &TestApp, buyer: &str, id: &str) -> Reply {
    app.post(&format!("/api/v1/orders/{id}/pay"), Some(buyer), &json!({})).await
}

async fn confirm_receipt(app: &TestApp, buyer: &str, id: &str) -> Reply {
    app.post(&format!("/api/v1/orders/{id}/confirm-receipt"), Some(buyer), &json!({})).await
}

async fn balance(app: &TestApp, token: &str) -> i64 {
    app.get("/api/v1/wallet", Some(token)).await.body["balance_cents"].as_i64().unwrap()
}

async fn account_balance(app: &TestApp, account: &str) -> i64 {
    sqlx::query_scalar("SELECT balance_cents FROM ledger_accounts WHERE id = $1").bind(account).fetch_optional(app.shop.databases.main.pool()).await.unwrap().unwrap_or(0)
}

async fn transfers_for(app: &TestApp, prefix: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transfers WHERE id LIKE $1").bind(format!("{prefix}%")).fetch_one(app.shop.databases.main.pool()).await.unwrap()
}

/// Every balance (wallets, escrow, and the deposits account at minus all top-ups)
/// in one statement, so one consistent snapshot: money is conserved when it is 0.
async fn sum_of_all_balances(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT CAST(COALESCE(SUM(balance_cents), 0) AS BIGINT) FROM ledger_accounts").fetch_one(app.shop.databases.main.pool()).await.unwrap()
}

async fn assert_reconciled(app: &TestApp) {
    let report = app.shop.ledger.reconcile().await.unwrap();
    assert!(report.mismatches.is_empty() && report.unbalanced_transfers.is_empty(), "{report:?}");
}

async fn top_ups_are_idempotent_and_bad_amounts_change_nothing(app: TestApp) {
    let (buyer, _) = app.signed_in("wallet@example.com", "buyer").await;
    assert_eq!(balance(&app, &buyer).await, 0);
    let first = top_up(&app, &buyer, 5000, "deposit-1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["balance_cents"], 5000);
    let again = top_up(&app, &buyer, 5000, "deposit-1").await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    // Fifty concurrent retries of one key deposit once.
    let retries = join_all((0..50).map(|_| top_up(&app, &buyer, 1000, "deposit-2"))).await;
    assert!(retries.iter().all(|r| r.status == 200 || r.status == 409), "{:?}", retries.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(balance(&app, &buyer).await, 6000);
    assert_eq!(top_up(&app, &buyer, 2000, "deposit-1").await.assert_problem(422, "idempotency_key_reused")["code"], "idempotency_key_reused");

    for bad in [json!(0), json!(-5), json!(10_000_001), json!(1e18), json!("ten"), json!(1.5), json!(null)] {
        let reply = app.post("/api/v1/wallet/top-up", Some(&buyer), &json!({"amount_cents": bad})).await;
        assert_eq!(reply.status, 422, "{bad} → {}", reply.text);
    }
    app.post("/api/v1/wallet/top-up", None, &json!({"amount_cents": 100})).await.assert_problem(401, "unauthenticated");
    app.get("/api/v1/wallet?cursor=garbage", Some(&buyer)).await.assert_problem(422, "validation_failed");
    let wallet = app.get("/api/v1/wallet", Some(&buyer)).await.body;
    assert_eq!(wallet["balance_cents"], 6000, "nothing changed");
    assert_eq!(wallet["entries"].as_array().unwrap().len(), 2);
    assert_eq!(wallet["entries"][0]["amount_cents"], 1000, "newest first");
    assert_eq!(wallet["entries"][0]["balance_after_cents"], 6000);
    assert_eq!(wallet["entries"][0]["kind"], "top_up");

    // Paging: 25 more entries come back in pages with a cursor.
    for i in 0..25 {
        assert_eq!(top_up(&app, &buyer, 1, &format!("small-{i}")).await.status, 200);
    }
    let page1 = app.get("/api/v1/wallet", Some(&buyer)).await.body;
    assert_eq!(page1["entries"].as_array().unwrap().len(), 20);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app.get(&format!("/api/v1/wallet?cursor={cursor}"), Some(&buyer)).await.body;
    assert_eq!(page2["entries"].as_array().unwrap().len(), 7);
    assert!(page2["next_cursor"].is_null());
    assert_reconciled(&app).await;
}

async fn a_hundred_concurrent_pay_calls_pay_once(app: TestApp) {
    let shop = shop_with(&app, "once", 50, "reserve").await;
    let (buyer, _) = app.signed_in("payer@example.com", "buyer").await;
    top_up(&app, &buyer, 10_000, "t").await;
    let id = order(&app, &buyer, shop.product, 3).await;
    let replies = join_all((0..100).map(|_| pay(&app, &buyer, &id))).await;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.body["status"], "paid");
    }
    assert_eq!(transfers_for(&app, &format!("pay:{id}")).await, 1, "one transfer");
    assert_eq!(balance(&app, &buyer).await, 10_000 - 3 * PRICE);
    let seller_id = app.get("/api/v1/me", Some(&shop.seller)).await.body["user"]["id"].as_i64().unwrap();
    assert_eq!(account_balance(&app, &format!("escrow:{seller_id}")).await, 3 * PRICE, "held in the seller's own escrow");
    assert_eq!(account_balance(&app, "escrow").await, 0, "the shared escrow of older payments is not used");
    let stock = app.get(&format!("/api/v1/products/{}", shop.product), None).await.body["stock"].clone();
    assert_eq!(stock, json!({"available": 47, "reserved": 0, "sold": 3}), "the hold became a sale");
    assert_eq!(app.shop.payments.state_of(shop::orders::OrderId::parse("id", &id).unwrap()).await.unwrap().map(|s| s.as_str()), Some("paid"));
    assert_reconciled(&app).await;
}

async fn a_balance_for_ten_orders_pays_exactly_ten_of_a_hundred(app: TestApp) {
    let shop = shop_with(&app, "ten", 1000, "on_order").await;
    let (buyer, _) = app.signed_in("ten@example.com", "buyer").await;
    top_up(&app, &buyer, 10 * PRICE, "t").await;
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(order(&app, &buyer, shop.product, 1).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    // A watcher samples the buyer's balance throughout: it must never be negative.
    let watcher = tokio::spawn({
        let pool = app.shop.databases.main.pool().clone();
        let stop = stop.clone();
        async move {
            let mut lowest = i64::MAX;
            while !stop.load(Ordering::Relaxed) {
                let low: Option<i64> = sqlx::query_scalar("SELECT MIN(balance_cents) FROM ledger_accounts WHERE kind = 'wallet'").fetch_one(&pool).await.unwrap();
                lowest = lowest.min(low.unwrap_or(0));
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            lowest
        }
    });
    let replies = join_all(ids.iter().map(|id| pay(&app, &buyer, id))).await;
    stop.store(true, Ordering::Relaxed);
    let paid = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies.iter().filter(|r| r.status == 402 && r.body["code"] == "insufficient_funds").count();
    assert_eq!((paid, refused), (10, 90), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(watcher.await.unwrap() >= 0, "a balance went negative");
    assert_eq!(balance(&app, &buyer).await, 0);
    assert_eq!(transfers_for(&app, "pay:").await, 10);
    assert_eq!(app.count("payments").await, 10, "refused payments leave no record");
    assert_reconciled(&app).await;
}

async fn pay_cancel_ship_and_receive_move_money_between_the_right_accounts(app: TestApp) {
    let shop = shop_with(&app, "flow", 20, "reserve").await;
    let (buyer, _) = app.signed_in("flow@example.com", "buyer").await;
    top_up(&app, &buyer, 5 * PRICE, "t").await;
    let seller_id = app.get("/api/v1/me", Some(&shop.seller)).await.body["user"]["id"].as_i64().unwrap();

    // Short balance: 402, nothing moves, the order stays payable.
    let big = order(&app, &buyer, shop.product, 6).await;
    let short = app.post(&format!("/api/v1/orders/{big}/pay"), Some(&buyer), &json!({})).await;
    assert_eq!(short.assert_problem(402, "insufficient_funds")["current"]["needed_cents"], 6 * PRICE);
    assert_eq!(balance(&app, &buyer).await, 5 * PRICE);
    app.post(&format!("/api/v1/orders/{big}/cancel"), Some(&buyer), &json!({})).await;

    // Pay, then cancel before shipping: the money and the stock come back.
    let refunded = order(&app, &buyer, shop.product, 2).await;
    assert_eq!(app.post(&format!("/api/v1/orders/{refunded}/pay"), Some(&buyer), &json!({})).await.status, 200);
    assert_eq!(balance(&app, &buyer).await, 3 * PRICE);
    let cancelled = app.post(&format!("/api/v1/orders/{refunded}/cancel"), Some(&buyer), &json!({})).await;
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.text);
    assert_eq!(balance(&app, &buyer).await, 5 * PRICE);
    assert_eq!(account_balance(&app, &format!("escrow:{seller_id}")).await, 0);
    let stock = app.get(&format!("/api/v1/products/{}", shop.product), None).await.body["stock"].clone();
    assert_eq!(stock, json!({"available": 20, "reserved": 0, "sold": 0}));
    // Cancelling again refunds nothing more.
    app.post(&format!("/api/v1/orders/{refunded}/cancel"), Some(&buyer), &json!({})).await;
    assert_eq!(balance(&app, &buyer).await, 5 * PRICE);

    // Pay, ship, confirm receipt: escrow → seller.
    let received = order(&app, &buyer, shop.product, 1).await;
    app.post(&format!("/api/v1/orders/{received}/pay"), Some(&buyer), &json!({})).await;
    app.post(&format!("/api/v1/orders/{received}/confirm-receipt"), Some(&buyer), &json!({})).await.assert_problem(409, "invalid_transition");
    let shipped = app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{received}/shipping"), Some(&shop.seller), &json!({"carrier": "DHL", "tracking_number": "123", "expected_version": 0})).await;
    assert_eq!(shipped.status, 200, "{}", shipped.text);
    app.post(&format!("/api/v1/orders/{received}/cancel"), Some(&buyer), &json!({})).await.assert_problem(409, "invalid_transition");
    let receipts = join_all((0..20).map(|_| confirm_receipt(&app, &buyer, &received))).await;
    assert!(receipts.iter().all(|r| r.status == 200 && r.body["status"] == "completed"), "{:?}", receipts.iter().map(|r| &r.text).collect::<Vec<_>>());
    assert_eq!(account_balance(&app, &format!("wallet:{seller_id}")).await, PRICE, "the seller is paid once");
    assert_eq!(account_balance(&app, &format!("escrow:{seller_id}")).await, 0);
    assert_eq!(balance(&app, &buyer).await, 4 * PRICE);
    assert_reconciled(&app).await;
}

/// Payments made before escrow was split per seller (migration 0016) keep the
/// shared `escrow` account: a refund or a release takes the money from the account
/// the payment recorded, not from the seller's own.
async fn a_payment_held_in_the_shared_escrow_of_old_is_refunded_and_released_from_it(app: TestApp) {
    let shop = shop_with(&app, "legacy", 10, "reserve").await;
    let (buyer, _) = app.signed_in("legacy@example.com", "buyer").await;
    top_up(&app, &buyer, 5 * PRICE, "legacy").await;
    let seller_id = app.get("/api/v1/me", Some(&shop.seller)).await.body["user"]["id"].as_i64().unwrap();
    let own = format!("escrow:{seller_id}");
    let main = app.shop.databases.main.pool();
    // Two paid orders, their money moved to the shared account as an older server
    // would have left it: a balanced journal transfer, and the payment pointing there.
    let refunded = order(&app, &buyer, shop.product, 1).await;
    let released = order(&app, &buyer, shop.product, 2).await;
    for (id, cents) in [(&refunded, PRICE), (&released, 2 * PRICE)] {
        assert_eq!(pay(&app, &buyer, id).await.status, 200);
        let transfer = format!("legacy:{id}");
        let statements = [
            format!("INSERT INTO ledger_transfers (id, kind, amount_cents, order_id, created_at_ms) VALUES ('{transfer}', 'payment', {cents}, {id}, 0)"),
            format!("UPDATE ledger_accounts SET balance_cents = balance_cents - {cents} WHERE id = '{own}'"),
            format!("UPDATE ledger_accounts SET balance_cents = balance_cents + {cents} WHERE id = 'escrow'"),
            format!("INSERT INTO ledger_entries (transfer_id, account_id, amount_cents, balance_after_cents, created_at_ms) VALUES ('{transfer}', '{own}', -{cents}, (SELECT balance_cents FROM ledger_accounts WHERE id = '{own}'), 0)"),
            format!("INSERT INTO ledger_entries (transfer_id, account_id, amount_cents, balance_after_cents, created_at_ms) VALUES ('{transfer}', 'escrow', {cents}, (SELECT balance_cents FROM ledger_accounts WHERE id = 'escrow'), 0)"),
            format!("UPDATE payments SET escrow_account = 'escrow' WHERE order_id = {id}"),
        ];
        for statement in statements {
            sqlx::query(&statement).execute(main).await.unwrap();
        }
    }
    assert_eq!((account_balance(&app, &own).await, account_balance(&app, "escrow").await), (0, 3 * PRICE));
    assert_reconciled(&app).await;

    let cancelled = app.post(&format!("/api/v1/orders/{refunded}/cancel"), Some(&buyer), &json!({})).await;
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.text);
    assert_eq!(balance(&app, &buyer).await, 3 * PRICE, "refunded from the shared escrow");
    let shipped = app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{released}/shipping"), Some(&shop.seller), &json!({"carrier": "DHL", "tracking_number": "9", "expected_version": 0})).await;
    assert_eq!(shipped.status, 200, "{}", shipped.text);
    assert_eq!(confirm_receipt(&app, &buyer, &released).await.body["status"], "completed");
    assert_eq!(balance(&app, &shop.seller).await, 2 * PRICE, "released from the shared escrow");
    assert_eq!((account_balance(&app, &own).await, account_balance(&app, "escrow").await), (0, 0));
    assert_reconciled(&app).await;
}

async fn during_a_mixed_concurrent_run_money_is_conserved_and_reconciles(app: TestApp) {
    let shop = shop_with(&app, "mixed", 10_000, "reserve").await;
    let mut buyers = Vec::new();
    for b in 0..4 {
        let (token, _) = app.signed_in(&format!("mixed{b}@example.com"), "buyer").await;
        top_up(&app, &token, 20 * PRICE, "initial").await;
        buyers.push(token);
    }
    // Orders to act on: some to pay and cancel, some to pay, ship and receive.
    let mut plans = Vec::new();
    for (b, buyer) in buyers.iter().enumerate() {
        for k in 0..6 {
            plans.push((b, buyer.clone(), order(&app, buyer, shop.product, 1 + (k % 3)).await, k % 2 == 0));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let pool = app.shop.databases.main.pool().clone();
        let stop = stop.clone();
        async move {
            let mut samples = 0;
            while !stop.load(Ordering::Relaxed) {
                let sum: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(balance_cents), 0) AS BIGINT) FROM ledger_accounts").fetch_one(&pool).await.unwrap();
                assert_eq!(sum, 0, "money appeared or vanished mid-run");
                samples += 1;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            samples
        }
    });
    let work = plans.iter().map(|(b, buyer, id, refund)| {
        let app = &app;
        let seller = shop.seller.clone();
        async move {
            top_up(app, buyer, 100 + *b as i64, &format!("extra-{id}")).await;
            let paid = app.post(&format!("/api/v1/orders/{id}/pay"), Some(buyer), &json!({})).await;
            if paid.status != 200 {
                return;
            }
            if *refund {
                app.post(&format!("/api/v1/orders/{id}/cancel"), Some(buyer), &json!({})).await;
            } else {
                app.send_json(reqwest::Method::PUT, &format!("/api/v1/seller/orders/{id}/shipping"), Some(&seller), &json!({"carrier": "UPS", "tracking_number": "1Z", "expected_version": 0})).await;
                app.post(&format!("/api/v1/orders/{id}/confirm-receipt"), Some(buyer), &json!({})).await;
            }
        }
    });
    join_all(work).await;
    stop.store(true, Ordering::Relaxed);
    assert!(sampler.await.unwrap() > 0);
    let deposited: i64 = 4 * 20 * PRICE + plans.iter().map(|(b, ..)| 100 + *b as i64).sum::<i64>();
    assert_eq!(-account_balance(&app, shop::services::ledger::DEPOSITS).await, deposited);
    assert_eq!(sum_of_all_balances(&app).await, 0);
    assert_reconciled(&app).await;
}

/// A flash sale's payments (issue 14): many payments to one seller at once,
/// each submitted twice, share `main` transactions. Every kind a batch meets is
/// here: stock taken at payment (and running short), held stock confirmed, a
/// wallet too poor, a buyer paying two orders, an order of two lines.
async fn payments_to_one_seller_at_once_share_transactions_and_each_moves_once(app: TestApp) {
    let app = &app;
    let (seller, _) = app.signed_in("batch-seller@example.com", "seller").await;
    let mut products = Vec::new();
    for (stock, mode) in [(20, "on_payment"), (100, "reserve"), (10, "on_order")] {
        let reply = app.post("/api/v1/seller/products", Some(&seller), &json!({"title": "Widget", "price_cents": PRICE, "stock": stock, "inventory_mode": mode})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        products.push(reply.body["id"].as_i64().unwrap());
    }
    let [on_payment, reserved, on_order] = products[..] else { unreachable!() };
    // (buyer, order, what paying it must answer)
    let mut plans: Vec<(String, String, u16)> = Vec::new();
    for b in 0..63 {
        let (buyer, _) = app.signed_in(&format!("batch{b}@example.com"), "buyer").await;
        let poor = (50..60).contains(&b);
        top_up(app, &buyer, if poor { PRICE - 1 } else { 10_000 }, "t").await;
        match b {
            0..30 => plans.push((buyer.clone(), order(app, &buyer, on_payment, 1).await, 0)), // 20 of 30 fit
            30..50 => plans.push((buyer.clone(), order(app, &buyer, reserved, 2).await, 200)),
            50..60 => plans.push((buyer.clone(), order(app, &buyer, reserved, 1).await, 402)),
            60 | 61 => {
                for _ in 0..2 {
                    plans.push((buyer.clone(), order(app, &buyer, reserved, 1).await, 200));
                }
            }
            _ => {
                let opened = app.post("/api/v1/checkout", Some(&buyer), &json!({"lines": [{"product_id": reserved, "quantity": 1}, {"product_id": on_order, "quantity": 1}]})).await;
                assert_eq!(opened.status, 201, "{}", opened.text);
                let body = json!({"order_id": opened.body["order_id"], "checkout_token": opened.body["checkout_token"], "lines": opened.body["lines"], "shipping_address": address()});
                let placed = app.post("/api/v1/orders", Some(&buyer), &body).await;
                assert_eq!(placed.status, 201, "{}", placed.text);
                plans.push((buyer.clone(), placed.body["id"].as_str().unwrap().to_owned(), 200));
            }
        }
    }
    let (charges_before, _) = app.shop.payments.shared_charge_batches();
    let (marks_before, _) = app.shop.orders.shared_paid_batches();
    let replies = join_all(plans.iter().flat_map(|(buyer, id, _)| [0, 1].map(move |_| pay(app, buyer, id)))).await;
    assert!(app.shop.payments.shared_charge_batches().0 > charges_before, "{} payments at once shared no main transaction", replies.len());
    assert!(app.shop.orders.shared_paid_batches().0 > marks_before, "{} payments at once shared no shard transaction", replies.len());

    let mut on_payment_paid = 0;
    for ((_, id, expected), pair) in plans.iter().zip(replies.chunks(2)) {
        assert_eq!(pair[0].status, pair[1].status, "order {id}: both submits answer alike: {} / {}", pair[0].text, pair[1].text);
        match expected {
            0 => match pair[0].status.as_u16() {
                200 => on_payment_paid += 1,
                409 => assert_eq!(pair[0].body["code"], "insufficient_stock"),
                other => panic!("order {id}: {other} {}", pair[0].text),
            },
            402 => assert_eq!(pair[0].body["code"], "insufficient_funds", "order {id}: {}", pair[0].text),
            _ => assert_eq!(pair[0].body["status"], "paid", "order {id}: {}", pair[0].text),
        }
    }
    assert_eq!(on_payment_paid, 20, "exactly the units that exist are sold at payment");
    let stock_of = |id: i64| async move { app.get(&format!("/api/v1/products/{id}"), None).await.body["stock"].clone() };
    assert_eq!(stock_of(on_payment).await, json!({"available": 0, "reserved": 0, "sold": 20}));
    assert_eq!(stock_of(reserved).await, json!({"available": 100 - 40 - 10 - 4 - 1, "reserved": 10, "sold": 45}), "held stock confirmed once; the poor keep their holds");
    assert_eq!(stock_of(on_order).await, json!({"available": 9, "reserved": 0, "sold": 1}));

    let paid_orders = 20 + 20 + 4 + 1;
    assert_eq!(transfers_for(app, "pay:").await, paid_orders, "one transfer per paid order");
    assert_eq!(app.count("payments").await, paid_orders, "refused payments leave no record");
    let closed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE state = 'paid'").fetch_one(app.shop.databases.main.pool()).await.unwrap();
    assert_eq!(closed, paid_orders, "every payment record closed");
    let seller_id = app.get("/api/v1/me", Some(&seller)).await.body["user"]["id"].as_i64().unwrap();
    let units_paid = 20 + 20 * 2 + 4 + 2;
    assert_eq!(account_balance(app, &format!("escrow:{seller_id}")).await, units_paid * PRICE);
    for (buyer, _, expected) in &plans[30..50] {
        assert_eq!((*expected, balance(app, buyer).await), (200, 10_000 - 2 * PRICE));
    }
    for (buyer, _, _) in &plans[50..60] {
        assert_eq!(balance(app, buyer).await, PRICE - 1, "a refused payment moves nothing");
    }
    let mut unpaid = 0;
    for shard in app.shop.orders.shards().all() {
        unpaid += sqlx::query_scalar::<_, i64>("SELECT CAST(COALESCE(SUM(unpaid), 0) AS BIGINT) FROM buyer_unpaid").fetch_one(shard.pool()).await.unwrap();
    }
    assert_eq!(unpaid, 10 + 10, "a paid order gives its buyer's unpaid slot back once; the refused keep theirs");
    assert_eq!(sum_of_all_balances(app).await, 0);
    assert_reconciled(app).await;
}

async fn the_journal_refuses_update_and_delete(app: TestApp) {
    let (buyer, _) = app.signed_in("journal@example.com", "buyer").await;
    top_up(&app, &buyer, 500, "t").await;
    let pool = app.shop.databases.main.pool();
    for statement in [
        "UPDATE ledger_entries SET amount_cents = amount_cents * 2",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transfers SET amount_cents = 1",
        "DELETE FROM ledger_transfers",
    ] {
        let refused = sqlx::query(statement).execute(pool).await;
        let message = refused.expect_err(statement).to_string();
        assert!(message.contains("append-only"), "{statement}: {message}");
    }
    if app.shop.databases.main.backend() == Backend::Postgres {
        assert!(sqlx::query("TRUNCATE ledger_entries").execute(pool).await.is_err());
    }
    assert_eq!(app.count("ledger_entries").await, 2);
    assert_reconciled(&app).await;
}

/// The lost update our isolation choice must prevent: at READ COMMITTED a
/// read-then-write loses concurrent increments (shown here on PostgreSQL, where
/// transactions run in parallel; SQLite's BEGIN IMMEDIATE serialises them). The
/// ledger's conditional UPDATEs keep every one, on both backends.
async fn read_then_write_loses_updates_that_conditional_updates_keep(app: TestApp) {
    const WRITERS: i64 = 20;
    let main = &app.shop.databases.main;
    if main.backend() == Backend::Postgres {
        sqlx::query("CREATE TABLE lost_update_demo (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)").execute(main.pool()).await.unwrap();
        sqlx::query("INSERT INTO lost_update_demo (id, n) VALUES (1, 0)").execute(main.pool()).await.unwrap();
        join_all((0..WRITERS).map(|_| async {
            let mut tx = main.begin_write().await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT n FROM lost_update_demo WHERE id = 1").fetch_one(&mut *tx).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            sqlx::query("UPDATE lost_update_demo SET n = $1 WHERE id = 1").bind(n + 1).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }))
        .await;
        let n: i64 = sqlx::query_scalar("SELECT n FROM lost_update_demo WHERE id = 1").fetch_one(main.pool()).await.unwrap();
        assert!(n < WRITERS, "read-then-write should have lost updates at READ COMMITTED, kept {n} of {WRITERS}");
    }
    let (buyer, _) = app.signed_in("increments@example.com", "buyer").await;
    let (app, buyer) = (&app, &buyer);
    let replies = join_all((0..WRITERS).map(|i| async move { top_up(app, buyer, 1, &format!("inc-{i}")).await })).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(balance(app, buyer).await, WRITERS, "every concurrent deposit counted");
    assert_reconciled(app).await;
}

async fn payment_after_stock_is_gone_is_refused_and_moves_nothing(app: TestApp) {
    // On-payment stock is only checked at order time: by payment it may be gone.
    let shop = shop_with(&app, "gone", 2, "on_payment").await;
    let (early, _) = app.signed_in("early@example.com", "buyer").await;
    let (late, _) = app.signed_in("late@example.com", "buyer").await;
    top_up(&app, &early, 10_000, "t").await;
    top_up(&app, &late, 10_000, "t").await;
    let late_order = order(&app, &late, shop.product, 2).await;
    let early_order = order(&app, &early, shop.product, 2).await;
    assert_eq!(app.post(&format!("/api/v1/orders/{early_order}/pay"), Some(&early), &json!({})).await.status, 200);
    let refused = app.post(&format!("/api/v1/orders/{late_order}/pay"), Some(&late), &json!({})).await;
    refused.assert_problem(409, "insufficient_stock");
    assert_eq!(balance(&app, &late).await, 10_000, "no money moved");
    assert_eq!(transfers_for(&app, &format!("pay:{late_order}")).await, 0);

    // A reserved order whose hold was released (an interrupted cancel, say) is
    // taken again from what is available when it is paid, if there is enough.
    let held = shop_with(&app, "held", 3, "reserve").await;
    let id = order(&app, &late, held.product, 2).await;
    app.shop.stock.release(shop::orders::OrderId::parse("id", &id).unwrap()).await.unwrap();
    let other = order(&app, &early, held.product, 2).await;
    let retry = app.post(&format!("/api/v1/orders/{id}/pay"), Some(&late), &json!({})).await;
    retry.assert_problem(409, "insufficient_stock");
    app.post(&format!("/api/v1/orders/{other}/cancel"), Some(&early), &json!({})).await;
    let paid = app.post(&format!("/api/v1/orders/{id}/pay"), Some(&late), &json!({})).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let stock = app.get(&format!("/api/v1/products/{}", held.product), None).await.body["stock"].clone();
    assert_eq!(stock, json!({"available": 1, "reserved": 0, "sold": 2}));
    assert_reconciled(&app).await;
}

async fn reconciliation_is_admin_only_and_reports_a_tampered_balance(app: TestApp) {
    let (buyer, user) = app.signed_in("tamper@example.com", "buyer").await;
    top_up(&app, &buyer, 900, "t").await;
    app.get("/api/v1/admin/reconcile", Some(&buyer)).await.assert_problem(403, "forbidden");
    app.get("/api/v1/admin/reconcile", None).await.assert_problem(401, "unauthenticated");
    let admin = crate::helpers::make_admin(&app, "auditor@example.com").await;
    let clean = app.get("/api/v1/admin/reconcile", Some(&admin)).await;
    assert_eq!(clean.status, 200, "{}", clean.text);
    assert_eq!(clean.body["mismatches"], json!([]));
    assert!(clean.body["accounts_checked"].as_i64().unwrap() >= 3);

    // Someone edits a balance behind the ledger's back: reconciliation says so.
    let wallet = format!("wallet:{}", user["id"]);
    sqlx::query("UPDATE ledger_accounts SET balance_cents = balance_cents + 1 WHERE id = $1").bind(&wallet).execute(app.shop.databases.main.pool()).await.unwrap();
    let report = app.get("/api/v1/admin/reconcile", Some(&admin)).await.body;
    assert_eq!(report["mismatches"], json!([{"account_id": wallet, "balance_cents": 901, "journal_sum_cents": 900}]));
    // The metric is process-wide (tests share it), so only its presence is checked.
    assert!(app.get("/metrics", None).await.text.contains("ninefold_ledger_mismatches_found_total"));
}

/// The charge batch's one UPDATE of many accounts (and the stock and unpaid-slot
/// batches' like it) locks its rows itself, in key order: two batches over rows
/// in common then never hold one the other wants (DESIGN.md, failure mode 6; the
/// ledger's lock order). Here the rows come in reverse order and the middle one
/// is held elsewhere: the UPDATE must wait holding only the rows before it.
async fn a_batched_update_locks_its_rows_in_key_order_whatever_order_they_come_in(app: TestApp) {
    use shop::db::dialect::{JsonColumn::{Int, Text}, json_key_in_locked, json_rows};
    let main = &app.shop.databases.main;
    let backend = main.backend();
    sqlx::query("CREATE TABLE lock_order_demo (id TEXT PRIMARY KEY, n BIGINT NOT NULL)").execute(main.pool()).await.unwrap();
    sqlx::query("INSERT INTO lock_order_demo (id, n) VALUES ('k1', 0), ('k2', 0), ('k3', 0)").execute(main.pool()).await.unwrap();
    let sql = format!(
        "UPDATE lock_order_demo SET n = n + delta FROM {} WHERE {} AND id = account",
        json_rows(backend, 1, &[Text("account"), Int("delta")]),
        json_key_in_locked(backend, "lock_order_demo", Text("id"), 1, 0)
    );
    let update = {
        let main = main.clone();
        move || async move {
            let mut tx = main.begin_write().await.unwrap();
            let rows = sqlx::query(&sql).bind(r#"[["k3", 1], ["k2", 1], ["k1", 1]]"#).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            rows.rows_affected()
        }
    };
    if backend == Backend::Postgres {
        let mut holder = main.begin_write().await.unwrap();
        sqlx::query("SELECT id FROM lock_order_demo WHERE id = 'k2' FOR UPDATE").fetch_all(&mut *holder).await.unwrap();
        let waiting = tokio::spawn(update());
        let mut blocked = false;
        for _ in 0..200 {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE lock_order_demo%'")
                .fetch_one(main.pool())
                .await
                .unwrap();
            if n == 1 {
                blocked = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(blocked, "the UPDATE never waited for the row held elsewhere");
        let mut probe = main.begin_write().await.unwrap();
        let after = sqlx::query("SELECT id FROM lock_order_demo WHERE id = 'k3' FOR UPDATE NOWAIT").fetch_all(&mut *probe).await;
        assert!(after.is_ok(), "the waiting UPDATE holds k3, which comes after the row it waits for: {:?}", after.err());
        probe.rollback().await.unwrap();
        let mut probe = main.begin_write().await.unwrap();
        let before = sqlx::query("SELECT id FROM lock_order_demo WHERE id = 'k1' FOR UPDATE NOWAIT").fetch_all(&mut *probe).await;
        assert!(before.is_err(), "the waiting UPDATE should hold k1, which comes before the row it waits for");
        probe.rollback().await.unwrap();
        holder.commit().await.unwrap();
        assert_eq!(waiting.await.unwrap(), 3);
    } else {
        assert_eq!(update().await, 3);
    }
    let total: i64 = sqlx::query_scalar("SELECT CAST(SUM(n) AS BIGINT) FROM lock_order_demo").fetch_one(main.pool()).await.unwrap();
    assert_eq!(total, 3, "every row moved once");
}
