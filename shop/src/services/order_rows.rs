//! How an order is stored on its shard and read back, and the outbox row every
//! order-writing transaction appends (DESIGN.md, failure mode 9: the seller index
//! is fed from it). Shared by every service that writes or reads orders.

use crate::clock::{now_ms, rfc3339};
use crate::domain::{OrderId, ProductId, UserId};
use crate::error::{ShopError, ShopResult};
use crate::orders::{Order, OrderLine, OrderStatus, SellerOrder, Waybill, WaybillChange};
use crate::db::JsonRows;
use crate::db::dialect::{JsonColumn::{Int, Text}, backend_of, json_key_in, json_rows};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};

/// Appends the order's summary, as this transaction leaves it, to the shard's
/// outbox. Call it in every transaction that writes an order, after the write
/// (which must have bumped `orders.version`).
pub(crate) async fn record_change(tx: &mut Transaction<'static, Any>, id: OrderId) -> ShopResult<()> {
    let summary = read_seller_order(tx, id).await?.ok_or(ShopError::NotFound("order"))?;
    record_summary_in(tx, &summary).await
}

/// Appends `summary` to the outbox: for a transaction that knows exactly what it
/// wrote (a new order), without reading it back.
pub(crate) async fn record_summary_in(tx: &mut Transaction<'static, Any>, summary: &SellerOrder) -> ShopResult<()> {
    record_summaries_in(tx, &[summary]).await
}

/// As [`record_summary_in`], for many orders in one statement.
pub(crate) async fn record_summaries_in(tx: &mut Transaction<'static, Any>, summaries: &[&SellerOrder]) -> ShopResult<()> {
    let mut rows = JsonRows::default();
    for summary in summaries {
        rows.push(json!([summary.order.id.get(), summary.version, serde_json::to_string(summary).map_err(anyhow::Error::from)?]));
    }
    let source = json_rows(backend_of(tx), 2, &[Int("order_id"), Int("version"), Text("payload")]);
    // `WHERE true`: SQLite reads an ON CONFLICT after a bare SELECT as a join's.
    let sql = format!(
        "INSERT INTO order_outbox (order_id, version, payload, created_at_ms) SELECT order_id, version, payload, $1 FROM {source} WHERE true \
         ON CONFLICT (order_id, version) DO NOTHING"
    );
    sqlx::query(&sql).bind(now_ms()).bind(rows.into_param()).execute(&mut **tx).await?;
    Ok(())
}

/// The order and its seller-facing summary, read on `conn`: a pool connection, or
/// the shard transaction that has just written the order (so the outbox gets
/// exactly what that transaction commits).
pub(crate) async fn read_seller_order(conn: &mut AnyConnection, id: OrderId) -> ShopResult<Option<SellerOrder>> {
    Ok(read_seller_orders(conn, &[id]).await?.pop())
}

/// As [`read_seller_order`], for many orders in two statements: those found, in no
/// particular order.
pub(crate) async fn read_seller_orders(conn: &mut AnyConnection, ids: &[OrderId]) -> ShopResult<Vec<SellerOrder>> {
    let ids_param = JsonRows::of_values(ids.iter().map(|id| id.get())).into_param();
    let backend = backend_of(conn);
    let sql = format!(
        "SELECT o.id, o.buyer_id, o.seller_id, o.status, o.total_cents, o.shipping_address, o.hold_expires_at_ms, o.created_at_ms, \
         o.updated_at_ms, o.version, s.carrier, s.tracking_number, s.version AS shipping_version, s.updated_at_ms AS shipping_updated_at_ms \
         FROM orders o LEFT JOIN shipping_records s ON s.order_id = o.id WHERE {}",
        json_key_in(backend, Int("o.id"), 1, 0)
    );
    let rows = sqlx::query(&sql).bind(&ids_param).fetch_all(&mut *conn).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT order_id, product_id, seller_id, quantity, unit_price_cents, snapshot_digest FROM order_lines WHERE {} ORDER BY order_id, line_no",
        json_key_in(backend, Int("order_id"), 1, 0)
    );
    let lines = sqlx::query(&sql).bind(&ids_param).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let own: Vec<&AnyRow> = lines.iter().filter(|l| l.try_get::<i64, _>("order_id").ok() == Some(id)).collect();
            Ok(SellerOrder {
                order: order_from_rows(row, &own)?,
                seller_id: UserId::from_stored(row.try_get("seller_id")?),
                version: row.try_get("version")?,
                updated_at: rfc3339(row.try_get("updated_at_ms")?),
            })
        })
        .collect()
}

fn order_from_rows(row: &AnyRow, lines: &[&AnyRow]) -> ShopResult<Order> {
    let status: String = row.try_get("status")?;
    let address: String = row.try_get("shipping_address")?;
    let hold: Option<i64> = row.try_get("hold_expires_at_ms")?;
    let status = OrderStatus::parse("status", &status).map_err(|e| anyhow::anyhow!("stored order is invalid: {e}"))?;
    let lines = lines
        .iter()
        .map(|l| {
            Ok(OrderLine {
                product_id: ProductId::from_stored(l.try_get("product_id")?),
                seller_id: UserId::from_stored(l.try_get("seller_id")?),
                quantity: l.try_get("quantity")?,
                unit_price_cents: l.try_get("unit_price_cents")?,
                snapshot_digest: l.try_get("snapshot_digest")?,
            })
        })
        .collect::<ShopResult<Vec<_>>>()?;
    Ok(Order {
        id: OrderId::from_stored(row.try_get("id")?),
        buyer_id: UserId::from_stored(row.try_get("buyer_id")?),
        status,
        lines,
        total_cents: row.try_get("total_cents")?,
        created_at: rfc3339(row.try_get("created_at_ms")?),
        hold_expires_at: hold.filter(|_| status == OrderStatus::PendingPayment).map(rfc3339),
        shipping_address: serde_json::from_str(&address).map_err(anyhow::Error::from)?,
        shipping: match row.try_get::<Option<i64>, _>("shipping_version")? {
            Some(version) => Some(Waybill {
                carrier: row.try_get("carrier")?,
                tracking_number: row.try_get("tracking_number")?,
                version,
                updated_at: rfc3339(row.try_get("shipping_updated_at_ms")?),
            }),
            None => None,
        },
        archived: false,
    })
}

/// Every accepted waybill change of the order, oldest first, read on `conn` (its
/// shard, or the archive).
pub(crate) async fn read_waybill_history(conn: &mut AnyConnection, id: OrderId) -> ShopResult<Vec<WaybillChange>> {
    let rows = sqlx::query("SELECT version, carrier, tracking_number, changed_at_ms, changed_by FROM shipping_history WHERE order_id = $1 ORDER BY version")
        .bind(id.get())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(WaybillChange {
                version: row.try_get("version")?,
                carrier: row.try_get("carrier")?,
                tracking_number: row.try_get("tracking_number")?,
                changed_at: rfc3339(row.try_get("changed_at_ms")?),
                changed_by: UserId::from_stored(row.try_get("changed_by")?),
            })
        })
        .collect()
}

/// The ids of a buyer's orders held in `db` (a shard), newest first, older than
/// `before`: one range read on the `(buyer_id, id)` index (a display read). One
/// more than `limit` is asked for, so the caller knows whether a next page exists.
pub(crate) async fn buyer_order_ids(db: &crate::db::Db, buyer: UserId, status: Option<OrderStatus>, before: Option<OrderId>, limit: i64) -> ShopResult<Vec<OrderId>> {
    let ids: Vec<i64> = db
        .display_read(|pool| {
            let query = sqlx::query_scalar("SELECT id FROM orders WHERE buyer_id = $1 AND id < $2 AND ($3 IS NULL OR status = $3) ORDER BY id DESC LIMIT $4")
                .bind(buyer.get())
                .bind(before.map_or(i64::MAX, OrderId::get))
                .bind(status.map(OrderStatus::as_str))
                .bind(limit + 1);
            async move { Ok(query.fetch_all(&pool).await?) }
        })
        .await?;
    Ok(ids.into_iter().map(OrderId::from_stored).collect())
}

/// The order's status as stored now, if the order exists.
pub(crate) async fn status_of(shard: &crate::db::Db, id: OrderId) -> ShopResult<Option<OrderStatus>> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1").bind(id.get()).fetch_optional(shard.pool()).await?;
    status.map(|s| OrderStatus::parse("status", &s).map_err(|e| anyhow::anyhow!("stored order is invalid: {e}").into())).transpose()
}

/// The order with its seller-facing summary, read from `shard`; `None` if it is not there.
pub(crate) async fn load(shard: &crate::db::Db, id: OrderId) -> ShopResult<Option<SellerOrder>> {
    let mut conn = shard.pool().acquire().await?;
    read_seller_order(&mut conn, id).await
}

/// Takes one of the buyer's unpaid-order slots in the caller's shard transaction
/// (which is inserting an unpaid order): `false` when the buyer already holds `max`.
pub(crate) async fn take_unpaid_slot_in(tx: &mut Transaction<'static, Any>, buyer: UserId, max: i64) -> ShopResult<bool> {
    Ok(!take_unpaid_slots_in(tx, &[buyer], max).await?.is_empty())
}

/// Takes one unpaid slot for each of `buyers` (distinct) in one statement: the
/// first slot inserts the buyer's row, later ones count up while under `max`.
/// The buyers that got one.
pub(crate) async fn take_unpaid_slots_in(tx: &mut Transaction<'static, Any>, buyers: &[UserId], max: i64) -> ShopResult<Vec<UserId>> {
    if max < 1 || buyers.is_empty() {
        return Ok(Vec::new());
    }
    // Rows in buyer order, which PostgreSQL locks them in: the order every batch
    // that changes several buyers' slots keeps (see `paid_marks`), so two cannot deadlock.
    let mut buyers = buyers.to_vec();
    buyers.sort();
    let source = json_rows(backend_of(tx), 2, &[Int("buyer_id")]);
    let sql = format!(
        "INSERT INTO buyer_unpaid (buyer_id, unpaid) SELECT buyer_id, 1 FROM {source} WHERE true ORDER BY buyer_id \
         ON CONFLICT (buyer_id) DO UPDATE SET unpaid = buyer_unpaid.unpaid + 1 WHERE buyer_unpaid.unpaid < $1 RETURNING buyer_id"
    );
    let query = sqlx::query_scalar::<_, i64>(&sql).bind(max).bind(JsonRows::of_values(buyers.iter().map(|b| b.get())).into_param());
    Ok(query.fetch_all(&mut **tx).await?.into_iter().map(UserId::from_stored).collect())
}

/// Inserts lines of any orders in one statement: (order, line number, line).
pub(crate) async fn insert_lines_of_many_in(tx: &mut Transaction<'static, Any>, lines: &[(OrderId, usize, &OrderLine)]) -> ShopResult<()> {
    let rows = JsonRows::from_rows(lines.iter().map(|(id, line_no, line)| {
        json!([id.get(), *line_no as i64, line.product_id.get(), line.seller_id.get(), line.quantity, line.unit_price_cents, line.snapshot_digest])
    }));
    let columns = [Int("order_id"), Int("line_no"), Int("product_id"), Int("seller_id"), Int("quantity"), Int("unit_price_cents"), Text("snapshot_digest")];
    let sql = format!(
        "INSERT INTO order_lines (order_id, line_no, product_id, seller_id, quantity, unit_price_cents, snapshot_digest) \
         SELECT order_id, line_no, product_id, seller_id, quantity, unit_price_cents, snapshot_digest FROM {}",
        json_rows(backend_of(tx), 1, &columns)
    );
    sqlx::query(&sql).bind(rows.into_param()).execute(&mut **tx).await?;
    Ok(())
}

/// Gives the order's unpaid slot back, in the transaction that has just moved it
/// out of `pending_payment`.
pub(crate) async fn free_unpaid_slot_in(tx: &mut Transaction<'static, Any>, id: OrderId) -> ShopResult<()> {
    sqlx::query("UPDATE buyer_unpaid SET unpaid = unpaid - 1 WHERE buyer_id = (SELECT buyer_id FROM orders WHERE id = $1) AND unpaid > 0")
        .bind(id.get())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
