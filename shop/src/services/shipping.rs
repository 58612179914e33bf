//! Waybills (DESIGN.md, failure mode 5): a seller enters and corrects the carrier
//! and tracking number of an order; a stale or retried change can never put back
//! an older waybill.
//!
//! The record lives on the order's shard with a version. A change names the
//! version it was made against: version 0 inserts the first record (and moves the
//! order from `paid` to `shipped`), any other version is a conditional UPDATE on
//! exactly that version. Whoever loses gets [`ShopError::StaleWaybill`] with the
//! current record. Each accepted change is appended to `shipping_history` in the
//! same transaction.

use crate::accounts::User;
use crate::clock::{now_ms, rfc3339};
use crate::domain::UserId;
use crate::error::{ShopError, ShopResult};
use crate::orders::{OrderId, OrderStatus, SellerOrder, Waybill, WaybillChange, WaybillInput};
use crate::services::Orders;
use crate::services::catalog::require_seller;
use crate::services::order_rows::record_change;
use sqlx::Row;

#[derive(Clone, Debug)]
pub struct Shipping {
    orders: Orders,
}

impl Shipping {
    pub fn new(orders: Orders) -> Self {
        Self { orders }
    }

    /// The seller's order, with its version and last change, read from its shard.
    /// Another seller's order is "not found"; a non-seller is refused.
    pub async fn seller_order(&self, seller: &User, id: OrderId) -> ShopResult<SellerOrder> {
        require_seller(seller)?;
        match self.orders.load_versioned(id).await? {
            Some(order) if order.seller_id == seller.id => Ok(order),
            _ => Err(ShopError::NotFound("order")),
        }
    }

    /// Enters (`expected_version` 0) or corrects the waybill.
    pub async fn set_waybill(&self, seller: &User, id: OrderId, expected_version: i64, input: WaybillInput) -> ShopResult<Waybill> {
        let order = self.seller_order(seller, id).await?.order;
        if expected_version < 0 {
            return Err(crate::domain::FieldError::new("expected_version", "must be 0 (first waybill) or the version you read").into());
        }
        let now = now_ms();
        let shard = self.orders.shards().of_order(id);
        let mut tx = shard.begin_write().await?;
        let accepted = if expected_version == 0 {
            if !order.status.accepts_waybill(order.shipping.is_some()) {
                return Err(ShopError::order_is(order.status));
            }
            let inserted = sqlx::query(
                "INSERT INTO shipping_records (order_id, carrier, tracking_number, version, updated_at_ms, updated_by) \
                 VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (order_id) DO NOTHING",
            )
            .bind(id.get())
            .bind(&input.carrier)
            .bind(&input.tracking_number)
            .bind(now)
            .bind(seller.id.get())
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                let shipped = sqlx::query("UPDATE orders SET status = 'shipped', updated_at_ms = $1, version = version + 1 WHERE id = $2 AND status = 'paid'")
                    .bind(now)
                    .bind(id.get())
                    .execute(&mut *tx)
                    .await?;
                if shipped.rows_affected() == 0 {
                    // Cancelled (refunded) meanwhile, the only way out of `paid` but
                    // shipping: nothing to ship. Dropping `tx` undoes the insert.
                    return Err(ShopError::order_is(OrderStatus::Cancelled));
                }
            }
            inserted.rows_affected() == 1
        } else {
            let updated = sqlx::query(
                "UPDATE shipping_records SET carrier = $1, tracking_number = $2, version = version + 1, updated_at_ms = $3, updated_by = $4 \
                 WHERE order_id = $5 AND version = $6",
            )
            .bind(&input.carrier)
            .bind(&input.tracking_number)
            .bind(now)
            .bind(seller.id.get())
            .bind(id.get())
            .bind(expected_version)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 1 {
                // The seller index shows the waybill: the order's summary changed too.
                sqlx::query("UPDATE orders SET updated_at_ms = $1, version = version + 1 WHERE id = $2")
                    .bind(now)
                    .bind(id.get())
                    .execute(&mut *tx)
                    .await?;
            }
            updated.rows_affected() == 1
        };
        if !accepted {
            drop(tx);
            metrics::counter!("ninefold_stale_waybill_updates_refused_total").increment(1);
            let current = self.current(id).await?.ok_or(ShopError::NotFound("waybill"))?;
            return Err(ShopError::StaleWaybill { current });
        }
        let version = expected_version + 1;
        sqlx::query(
            "INSERT INTO shipping_history (order_id, version, carrier, tracking_number, changed_at_ms, changed_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.get())
        .bind(version)
        .bind(&input.carrier)
        .bind(&input.tracking_number)
        .bind(now)
        .bind(seller.id.get())
        .execute(&mut *tx)
        .await?;
        record_change(&mut tx, id).await?;
        tx.commit().await?;
        tracing::info!(order_id = %id, version, "waybill set");
        Ok(Waybill { carrier: input.carrier, tracking_number: input.tracking_number, version, updated_at: rfc3339(now) })
    }

    /// Every accepted change, oldest first.
    pub async fn history(&self, seller: &User, id: OrderId) -> ShopResult<Vec<WaybillChange>> {
        self.seller_order(seller, id).await?;
        let rows = sqlx::query(
            "SELECT version, carrier, tracking_number, changed_at_ms, changed_by FROM shipping_history WHERE order_id = $1 ORDER BY version",
        )
        .bind(id.get())
        .fetch_all(self.orders.shards().of_order(id).pool())
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

    async fn current(&self, id: OrderId) -> ShopResult<Option<Waybill>> {
        Ok(self.orders.load(id).await?.and_then(|order| order.shipping))
    }
}
