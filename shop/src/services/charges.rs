//! Group commit for payments (issue 14). Step 1 of paying (DESIGN.md, failure
//! mode 6) settles the stock and moves the money into the seller's escrow, so
//! every payment to one seller used to hold that seller's escrow row — and, in a
//! flash sale, the one stock row — from its first statement to its commit, and
//! payments ran one commit at a time. Here concurrent payments to one seller,
//! within this process, share a `main` transaction: one statement per step for
//! the whole batch, one escrow credit by their sum, one journal entry per leg.
//!
//! The statements keep their guards: the payment row's key lets one charge per
//! order through, the stock decrement is conditional, and so is each wallet's
//! debit (the escrow row is locked first, as the ledger's lock order says).
//! Each payment keeps its own outcome, as alone: a wallet that is short when the
//! batch reads it is refused, and when a product's stock does not cover the
//! batch, exactly the units that exist are granted in arrival order. Should a
//! guard still refuse (a wallet drained between the read and the debit), the
//! batch rolls back and [`GroupCommit`] charges each payment alone. Payments one
//! statement per step cannot carry (several lines, a buyer twice) are charged
//! one by one inside the batch's transaction, each under a savepoint.
//!
//! Step 3 (the payment record `charged → paid`) is batched too: one UPDATE for
//! all the payments that finished at once.

use crate::clock::now_ms;
use crate::db::dialect::{JsonColumn::{Int, Text}, backend_of, json_key_in, json_key_in_locked, json_rows};
use crate::db::{Backend, Db, JsonRows};
use serde_json::json;
use crate::domain::{Money, TakeState, UserId};
use crate::error::{ShopError, ShopResult};
use crate::faults::crash_point;
use crate::ledger::{PaymentState, TransferKind};
use crate::orders::{Order, OrderId};
use crate::services::group_commit::{Batched, GroupCommit};
use crate::services::ledger::{Transfer, ensure_accounts, ensure_wallet_and_escrow, escrow_of, transfer_in, wallet_of};
use crate::services::stock::{self, oversell_refused};
use crate::services::stock_batch;
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;

/// Step 1 of paying, batched per seller.
#[derive(Debug)]
pub(crate) struct Charges {
    main: Db,
}

impl Batched for Charges {
    /// The seller: their escrow account is the row every payment to them changes.
    type Key = UserId;
    type Item = Order;
    type Output = ();
    const MAX_BATCH: usize = 128;
    const METRIC: &'static str = "ninefold_payment_batch_charges";

    fn together<'a>(&'a self, seller: &'a UserId, orders: &'a [&'a Order]) -> impl Future<Output = ShopResult<Vec<ShopResult<()>>>> + Send + 'a {
        charge_together(&self.main, *seller, orders)
    }

    fn alone<'a>(&'a self, _seller: &'a UserId, order: &'a Order) -> impl Future<Output = ShopResult<()>> + Send + 'a {
        charge_alone(&self.main, order)
    }
}

/// Step 3 of paying, batched for all payments.
#[derive(Debug)]
pub(crate) struct PaidRecords {
    main: Db,
}

impl Batched for PaidRecords {
    type Key = ();
    type Item = OrderId;
    type Output = ();
    const MAX_BATCH: usize = 256;
    const METRIC: &'static str = "ninefold_payment_batch_closings";

    fn together<'a>(&'a self, _key: &'a (), ids: &'a [&'a OrderId]) -> impl Future<Output = ShopResult<Vec<ShopResult<()>>>> + Send + 'a {
        close_together(&self.main, ids)
    }

    fn alone<'a>(&'a self, _key: &'a (), id: &'a OrderId) -> impl Future<Output = ShopResult<()>> + Send + 'a {
        async move { close_together(&self.main, std::slice::from_ref(&id)).await?.pop().unwrap_or(Ok(())) }
    }
}

/// The payment steps that share transactions.
#[derive(Clone, Debug)]
pub(crate) struct PaymentBatches {
    main: Db,
    charges: GroupCommit<Charges>,
    closings: GroupCommit<PaidRecords>,
}

impl PaymentBatches {
    pub(crate) fn new(main: Db) -> Self {
        Self { charges: GroupCommit::new(Charges { main: main.clone() }), closings: GroupCommit::new(PaidRecords { main: main.clone() }), main }
    }

    /// Step 1: records the payment, settles its stock and moves the money into
    /// the seller's escrow, with whatever other payments to the seller are waiting.
    /// Charging a charged order again moves nothing.
    pub(crate) async fn charge(&self, order: &Order) -> ShopResult<()> {
        // The transaction runs in another task: the caller's read fence must cover it.
        self.main.note_primary_write();
        self.charges.submit(seller_of(order)?, order.clone()).await
    }

    /// Step 3: the payment record `charged → paid` (a record past `charged` is left alone).
    pub(crate) async fn close(&self, id: OrderId) -> ShopResult<()> {
        self.main.note_primary_write();
        self.closings.submit((), id).await
    }

    /// Batches of more than one charge committed so far, and the charges in them.
    pub(crate) fn shared_charge_batches(&self) -> (u64, u64) {
        self.charges.shared_batches()
    }
}

/// The seller an order pays (every order has a line, and one seller).
pub(crate) fn seller_of(order: &Order) -> ShopResult<UserId> {
    order.lines.first().map(|l| l.seller_id).ok_or_else(|| anyhow::anyhow!("order {} has no lines", order.id).into())
}

/// One charge in a transaction of its own.
async fn charge_alone(main: &Db, order: &Order) -> ShopResult<()> {
    let mut tx = main.begin_write().await?;
    charge_in(&mut tx, order).await?;
    crash_point("pay:charging"); // inside the transaction: nothing of it may survive
    tx.commit().await?;
    Ok(())
}

/// One charge, statement by statement, in the caller's transaction. Nothing
/// happens twice: the payment row's primary key lets one caller through; a
/// concurrent one waits for it, then finds the row and moves nothing.
async fn charge_in(tx: &mut Transaction<'static, Any>, order: &Order) -> ShopResult<()> {
    let seller = seller_of(order)?;
    let escrow = escrow_of(seller);
    if insert_payments(tx, seller, std::slice::from_ref(&order)).await?.is_empty() {
        return Ok(()); // charged before (a retry, another tab): go on to the next step
    }
    stock::settle_for_payment_in(tx, order).await?;
    ensure_wallet_and_escrow(tx, order.buyer_id, seller).await?;
    let buyer_wallet = wallet_of(order.buyer_id);
    let transfer = Transfer {
        id: payment_transfer_id(order.id),
        kind: TransferKind::Payment,
        from: &buyer_wallet,
        to: &escrow,
        amount: Money::from_stored(order.total_cents),
        order_id: Some(order.id.get()),
    };
    transfer_in(tx, &transfer).await?;
    Ok(())
}

fn payment_transfer_id(id: OrderId) -> String {
    format!("pay:{id}")
}

/// A batch in one transaction. An `Err` means nothing was committed.
async fn charge_together(main: &Db, seller: UserId, orders: &[&Order]) -> ShopResult<Vec<ShopResult<()>>> {
    let (plain, odd) = split_plain(orders);
    let mut outcomes: HashMap<usize, ShopResult<()>> = HashMap::new();
    let mut tx = main.begin_write().await?;

    let plain_orders: Vec<&Order> = plain.iter().map(|&i| orders[i]).collect();
    let fresh = insert_payments(&mut tx, seller, &plain_orders).await?;
    let fresh: Vec<(usize, &Order)> = plain.iter().map(|&i| (i, orders[i])).filter(|(_, o)| fresh.contains(&o.id.get())).collect();
    for &i in &plain {
        outcomes.insert(i, Ok(())); // charged now, or before
    }

    let escrow = escrow_of(seller);
    let wallets: Vec<String> = fresh.iter().map(|(_, o)| wallet_of(o.buyer_id)).collect();
    // One read answers whether the seller's escrow exists, what each wallet
    // holds and what stock each order has taken. A wallet that does not exist
    // holds nothing (its payment is refused below), so only the escrow is ever
    // opened here.
    let accounts: Vec<&str> = wallets.iter().map(String::as_str).chain([escrow.as_str()]).collect();
    let fresh_ids: Vec<OrderId> = fresh.iter().map(|(_, o)| o.id).collect();
    let (balances, takes) = if fresh.is_empty() { Default::default() } else { balances_and_takes(&mut tx, &accounts, &fresh_ids).await? };
    if !fresh.is_empty() && !balances.contains_key(&escrow) {
        ensure_accounts(&mut tx, &[(&escrow, "escrow", seller)]).await?;
    }

    // Refuse, before any stock moves, the payments whose wallet is short now.
    let mut paying = Vec::with_capacity(fresh.len());
    let mut refused = Vec::new();
    for ((i, order), wallet) in fresh.into_iter().zip(&wallets) {
        let balance_cents = balances.get(wallet).copied().unwrap_or(0);
        if balance_cents < order.total_cents {
            outcomes.insert(i, Err(ShopError::InsufficientFunds { balance_cents, needed_cents: order.total_cents }));
            refused.push(order.id);
        } else {
            paying.push(order);
        }
    }
    delete_payments(&mut tx, &refused).await?;

    if !paying.is_empty() {
        let short = settle_stock_together(&mut tx, &paying, &takes).await?;
        let short_ids: Vec<OrderId> = paying.iter().filter(|o| short.contains_key(&o.id.get())).map(|o| o.id).collect();
        delete_payments(&mut tx, &short_ids).await?;
        paying.retain(|o| !short.contains_key(&o.id.get()));
        for &i in &plain {
            if let Some(&product) = short.get(&orders[i].id.get()) {
                outcomes.insert(i, Err(oversell_refused(product)));
            }
        }
    }
    if !paying.is_empty() {
        // A wallet drained since the read: `Err`, and each payment is charged alone.
        move_money_together(&mut tx, main.backend(), &escrow, &paying).await?;
    }

    for i in odd {
        outcomes.insert(i, charge_under_savepoint(&mut tx, orders[i]).await);
    }
    crash_point("pay:charging");
    tx.commit().await?;
    Ok((0..orders.len()).map(|i| outcomes.remove(&i).unwrap_or_else(|| Err(anyhow::anyhow!("a batched charge got no outcome").into()))).collect())
}

/// The batch positions one statement per step can carry (one line, a positive
/// total, a buyer not seen before in the batch), and the rest.
fn split_plain(orders: &[&Order]) -> (Vec<usize>, Vec<usize>) {
    let mut buyers = HashSet::new();
    (0..orders.len()).partition(|&i| {
        let order = orders[i];
        order.lines.len() == 1 && order.total_cents > 0 && buyers.insert(order.buyer_id)
    })
}

async fn charge_under_savepoint(tx: &mut Transaction<'static, Any>, order: &Order) -> ShopResult<()> {
    sqlx::query("SAVEPOINT one_charge").execute(&mut **tx).await?;
    let outcome = charge_in(tx, order).await;
    if outcome.is_err() {
        sqlx::query("ROLLBACK TO SAVEPOINT one_charge").execute(&mut **tx).await?;
    }
    sqlx::query("RELEASE SAVEPOINT one_charge").execute(&mut **tx).await?;
    outcome
}

/// Inserts the payment rows that do not exist yet, as `charged`; the orders inserted.
async fn insert_payments(tx: &mut Transaction<'static, Any>, seller: UserId, orders: &[&Order]) -> ShopResult<HashSet<i64>> {
    if orders.is_empty() {
        return Ok(HashSet::new());
    }
    let source = json_rows(backend_of(tx), 5, &[Int("order_id"), Int("buyer_id"), Int("amount_cents")]);
    let sql = format!(
        "INSERT INTO payments (order_id, buyer_id, amount_cents, seller_id, state, escrow_account, created_at_ms, updated_at_ms) \
         SELECT order_id, buyer_id, amount_cents, $1, $2, $3, $4, $4 FROM {source} WHERE true ON CONFLICT (order_id) DO NOTHING RETURNING order_id"
    );
    let rows = JsonRows::from_rows(orders.iter().map(|o| json!([o.id.get(), o.buyer_id.get(), o.total_cents])));
    let query = sqlx::query(&sql).bind(seller.get()).bind(PaymentState::Charged.as_str()).bind(escrow_of(seller)).bind(now_ms()).bind(rows.into_param());
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|row| Ok(row.try_get::<i64, _>("order_id")?)).collect()
}

async fn delete_payments(tx: &mut Transaction<'static, Any>, ids: &[OrderId]) -> ShopResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!("DELETE FROM payments WHERE {}", json_key_in(backend_of(tx), Int("order_id"), 1, 0));
    sqlx::query(&sql).bind(JsonRows::of_values(ids.iter().map(|id| id.get())).into_param()).execute(&mut **tx).await?;
    Ok(())
}

/// What each account holds (by id), and the state of each order's stock take (by
/// order), in one statement: a batch's statements run one after another while
/// the seller's next payments wait, so two reads cost a round trip more than one.
async fn balances_and_takes(tx: &mut Transaction<'static, Any>, accounts: &[&str], orders: &[OrderId]) -> ShopResult<(HashMap<String, i64>, HashMap<i64, TakeState>)> {
    let backend = backend_of(tx);
    let sql = format!(
        "SELECT id AS account, balance_cents, NULL AS order_id, NULL AS state FROM ledger_accounts WHERE {} \
         UNION ALL SELECT NULL, NULL, order_id, state FROM stock_takes WHERE {}",
        json_key_in(backend, Text("id"), 1, 0),
        json_key_in(backend, Int("order_id"), 2, 0)
    );
    let query = sqlx::query(&sql).bind(JsonRows::of_values(accounts.iter().copied()).into_param()).bind(JsonRows::of_values(orders.iter().map(|id| id.get())).into_param());
    let (mut balances, mut takes) = (HashMap::new(), HashMap::new());
    for row in query.fetch_all(&mut **tx).await? {
        if let Some(account) = row.try_get::<Option<String>, _>("account")? {
            balances.insert(account, row.try_get("balance_cents")?);
            continue;
        }
        takes.insert(row.try_get::<i64, _>("order_id")?, stock::stored_take_state(&row.try_get::<String, _>("state")?)?);
    }
    Ok((balances, takes))
}

/// The stock of one-line orders at payment, as [`stock::settle_for_payment_in`]
/// does for one: a held take is confirmed (reserved → sold), a sold one stays,
/// and an order with no take (sold `on_payment`) or a released one takes its
/// units now. One guarded UPDATE per product, in product order; when a product
/// has not enough for all, exactly the units that exist are granted in arrival
/// order. `states` are the orders' takes as read in this transaction. The orders
/// refused for want of stock, with the product they wanted (nothing of theirs moved).
async fn settle_stock_together(tx: &mut Transaction<'static, Any>, orders: &[&Order], states: &HashMap<i64, TakeState>) -> ShopResult<HashMap<i64, i64>> {
    let held: Vec<OrderId> = orders.iter().filter(|o| state_in(states, o) == Some(TakeState::Held)).map(|o| o.id).collect();
    // A held take that lapsed since the read is not confirmed, and moves nothing
    // (the order is cancelled, and its payment is given back at step 2).
    let confirmed = set_takes_sold(tx, &held, Some(TakeState::Held)).await?;
    let takers: Vec<&Order> = orders.iter().copied().filter(|o| matches!(state_in(states, o), None | Some(TakeState::Released))).collect();

    let mut products: BTreeMap<i64, (Vec<(i64, i64)>, i64)> = BTreeMap::new(); // (takers' wants, units confirmed)
    for order in &takers {
        let line = &order.lines[0];
        products.entry(line.product_id.get()).or_default().0.push((order.id.get(), line.quantity));
    }
    for order in orders.iter().filter(|o| confirmed.contains(&o.id.get())) {
        let line = &order.lines[0];
        products.entry(line.product_id.get()).or_default().1 += line.quantity;
    }
    let mut refused = HashMap::new();
    for (product, (wanted, confirm)) in products {
        let take: i64 = wanted.iter().map(|(_, q)| q).sum();
        if move_stock(tx, product, take, confirm).await? {
            continue;
        }
        // Not enough for all: lock the row, grant what exists in arrival order.
        let available = stock_batch::lock_available_of(tx, &[product]).await?.get(&product).copied().unwrap_or(0);
        let (granted, short) = stock_batch::split_in_arrival_order(&wanted, available);
        if !move_stock(tx, product, granted, confirm).await? {
            return Err(anyhow::anyhow!("stock of product {product} moved under its lock").into());
        }
        refused.extend(short.into_iter().map(|order| (order, product)));
    }

    let granted: Vec<&Order> = takers.into_iter().filter(|o| !refused.contains_key(&o.id.get())).collect();
    let released: Vec<OrderId> = granted.iter().filter(|o| state_in(states, o).is_some()).map(|o| o.id).collect();
    let untaken: Vec<&Order> = granted.into_iter().filter(|o| state_in(states, o).is_none()).collect();
    let sold: Vec<OrderId> = orders.iter().filter(|o| state_in(states, o) == Some(TakeState::Sold)).map(|o| o.id).collect();
    set_takes_sold(tx, &released, None).await?;
    set_takes_sold(tx, &sold, None).await?;
    insert_sold_takes(tx, &untaken).await?;
    Ok(refused)
}

fn state_in(states: &HashMap<i64, TakeState>, order: &Order) -> Option<TakeState> {
    states.get(&order.id.get()).copied()
}

/// `take` units from available and `confirm` from reserved to sold, if
/// `take` are available; whether it moved.
async fn move_stock(tx: &mut Transaction<'static, Any>, product: i64, take: i64, confirm: i64) -> ShopResult<bool> {
    if take == 0 && confirm == 0 {
        return Ok(true);
    }
    let moved = sqlx::query("UPDATE stock SET available = available - $1, reserved = reserved - $2, sold = sold + $1 + $2 WHERE product_id = $3 AND available >= $1")
        .bind(take)
        .bind(confirm)
        .bind(product)
        .execute(&mut **tx)
        .await?;
    Ok(moved.rows_affected() == 1)
}

/// Marks the takes of these orders sold (and no longer due a check); with
/// `only_from`, only those still in that state. The orders changed.
async fn set_takes_sold(tx: &mut Transaction<'static, Any>, ids: &[OrderId], only_from: Option<TakeState>) -> ShopResult<HashSet<i64>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let guard = if only_from.is_some() { " AND state = $3" } else { "" };
    let wanted = json_key_in(backend_of(tx), Int("order_id"), 2, 0);
    let sql = format!("UPDATE stock_takes SET state = $1, check_at_ms = NULL WHERE {wanted}{guard} RETURNING order_id");
    let query = sqlx::query(&sql).bind(TakeState::Sold.as_str()).bind(JsonRows::of_values(ids.iter().map(|id| id.get())).into_param());
    let query = match only_from {
        Some(state) => query.bind(state.as_str()),
        None => query,
    };
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|row| Ok(row.try_get::<i64, _>("order_id")?)).collect()
}

async fn insert_sold_takes(tx: &mut Transaction<'static, Any>, orders: &[&Order]) -> ShopResult<()> {
    if orders.is_empty() {
        return Ok(());
    }
    let source = json_rows(backend_of(tx), 3, &[Int("order_id"), Int("product_id"), Int("quantity")]);
    let sql = format!("INSERT INTO stock_takes (order_id, product_id, quantity, state, check_at_ms, created_at_ms) SELECT order_id, product_id, quantity, $1, NULL, $2 FROM {source}");
    let rows = JsonRows::from_rows(orders.iter().map(|o| json!([o.id.get(), o.lines[0].product_id.get(), o.lines[0].quantity])));
    sqlx::query(&sql).bind(TakeState::Sold.as_str()).bind(now_ms()).bind(rows.into_param()).execute(&mut **tx).await?;
    Ok(())
}

/// Buyer → escrow for every order, as [`transfer_in`] does for one: the transfer
/// rows, one credit of escrow by the sum, the wallets debited each with its
/// guard, and both legs' journal entries in one statement.
async fn move_money_together(tx: &mut Transaction<'static, Any>, backend: Backend, escrow: &str, orders: &[&Order]) -> ShopResult<()> {
    let now = now_ms();
    let source = json_rows(backend, 3, &[Text("id"), Int("amount_cents"), Int("order_id")]);
    let sql = format!(
        "INSERT INTO ledger_transfers (id, kind, amount_cents, order_id, created_at_ms) SELECT id, $1, amount_cents, order_id, $2 FROM {source} WHERE true \
         ON CONFLICT (id) DO NOTHING RETURNING id"
    );
    let transfers = JsonRows::from_rows(orders.iter().map(|o| json!([payment_transfer_id(o.id), o.total_cents, o.id.get()])));
    let query = sqlx::query(&sql).bind(TransferKind::Payment.as_str()).bind(now).bind(transfers.into_param());
    if query.fetch_all(&mut **tx).await?.len() != orders.len() {
        // A payment transfer without its payment row: let each alone sort it out.
        return Err(anyhow::anyhow!("a batched payment found its transfer made before").into());
    }

    let sum: i64 = orders.iter().map(|o| o.total_cents).sum();
    let after = credit_escrow_and_debit_wallets(tx, backend, escrow, sum, orders).await?;
    let escrow_after = after.get(escrow).copied().ok_or_else(|| anyhow::anyhow!("escrow {escrow} was not credited"))?;
    let wallet_after: Vec<i64> = orders
        .iter()
        .map(|o| after.get(&wallet_of(o.buyer_id)).copied().ok_or_else(|| anyhow::anyhow!("wallet of order {} was not debited", o.id)))
        .collect::<Result<_, _>>()?;

    // In order (`seq`): escrow's running balance goes up entry by entry.
    let columns = [Int("seq"), Text("transfer_id"), Text("account_id"), Int("amount_cents"), Int("balance_after_cents")];
    let sql = format!(
        "INSERT INTO ledger_entries (transfer_id, account_id, amount_cents, balance_after_cents, created_at_ms) \
         SELECT transfer_id, account_id, amount_cents, balance_after_cents, $1 FROM {} ORDER BY seq",
        json_rows(backend, 2, &columns)
    );
    let mut escrow_running = escrow_after - sum;
    let mut entries = JsonRows::default();
    for (k, (order, wallet_after)) in orders.iter().zip(wallet_after).enumerate() {
        escrow_running += order.total_cents;
        let transfer = payment_transfer_id(order.id);
        let seq = 2 * k as i64;
        entries.push(json!([seq, transfer, escrow, order.total_cents, escrow_running]));
        entries.push(json!([seq + 1, transfer, wallet_of(order.buyer_id), -order.total_cents, wallet_after]));
    }
    sqlx::query(&sql).bind(now).bind(entries.into_param()).execute(&mut **tx).await?;
    Ok(())
}

/// Credits escrow by `sum` and debits each order's total from its buyer's wallet
/// (one order per buyer), in one statement, each wallet guarded by
/// `balance >= amount`: a batch waits on one round trip, not one per account. The
/// statement locks the accounts in id order before it changes any
/// ("escrow:…" sorts before "wallet:…", as the ledger's lock order wants), so two
/// batches of different sellers with buyers in common cannot deadlock. The
/// balances after, by account. `Err` if any wallet fell short since it was read
/// (each payment is then charged alone).
async fn credit_escrow_and_debit_wallets(tx: &mut Transaction<'static, Any>, backend: Backend, escrow: &str, sum: i64, orders: &[&Order]) -> ShopResult<HashMap<String, i64>> {
    let mut deltas: Vec<(String, i64)> = orders.iter().map(|o| (wallet_of(o.buyer_id), -o.total_cents)).collect();
    deltas.push((escrow.to_owned(), sum));
    deltas.sort();
    let (accounts, source) = (json_key_in_locked(backend, "ledger_accounts", Text("id"), 1, 0), json_rows(backend, 1, &[Text("account"), Int("delta")]));
    let sql = format!(
        "UPDATE ledger_accounts SET balance_cents = balance_cents + delta FROM {source} WHERE {accounts} AND id = account AND balance_cents + delta >= 0 RETURNING id, balance_cents"
    );
    let rows = sqlx::query(&sql).bind(JsonRows::from_rows(deltas.iter().map(|(account, delta)| json!([account, delta]))).into_param()).fetch_all(&mut **tx).await?;
    if rows.len() != deltas.len() {
        return Err(anyhow::anyhow!("a wallet was drained during a batched payment").into());
    }
    rows.iter().map(|row| Ok((row.try_get("id")?, row.try_get("balance_cents")?))).collect()
}

/// Moves every payment record still `charged` to `paid`, in one statement.
async fn close_together(main: &Db, ids: &[&OrderId]) -> ShopResult<Vec<ShopResult<()>>> {
    let wanted = json_key_in(main.backend(), Int("order_id"), 4, 0);
    let sql = format!("UPDATE payments SET state = $1, updated_at_ms = $2 WHERE state = $3 AND {wanted}");
    let query = sqlx::query(&sql).bind(PaymentState::Paid.as_str()).bind(now_ms()).bind(PaymentState::Charged.as_str());
    let mut tx = main.begin_write().await?;
    query.bind(JsonRows::of_values(ids.iter().map(|id| id.get())).into_param()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(ids.iter().map(|_| Ok(())).collect())
}
