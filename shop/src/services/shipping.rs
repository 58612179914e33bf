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
use crate::error::{ShopError, ShopResult};
use crate::orders::{OrderId, OrderStatus, SellerOrder, Waybill, WaybillChange, WaybillInput};
use crate::db::Read;
use crate::services::Orders;
use crate::services::catalog::require_seller;
use crate::services::order_rows::record_change;

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
        self.seller_order_for(seller, id, Read::Display).await
    }

    async fn seller_order_for(&self, seller: &User, id: OrderId, purpose: Read) -> ShopResult<SellerOrder> {
        require_seller(seller)?;
        match self.orders.load_versioned_for(id, purpose).await? {
            Some(order) if order.seller_id == seller.id => Ok(order),
            _ => Err(ShopError::NotFound("order")),
        }
    }

    /// Enters (`expected_version` 0) or corrects the waybill.
    ///
    /// Every statement locks the order row before the shipping record, as every
    /// other order write and the archive's delete do, so on PostgreSQL two writers
    /// of one order queue instead of deadlocking.
    pub async fn set_waybill(&self, seller: &User, id: OrderId, expected_version: i64, input: WaybillInput) -> ShopResult<Waybill> {
        let order = self.seller_order_for(seller, id, Read::Deciding).await?.order;
        if order.archived {
            return Err(ShopError::Archived);
        }
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
            let shipped = sqlx::query("UPDATE orders SET status = 'shipped', updated_at_ms = $1, version = version + 1 WHERE id = $2 AND status = 'paid'")
                .bind(now)
                .bind(id.get())
                .execute(&mut *tx)
                .await?;
            if shipped.rows_affected() == 0 {
                // Shipped by a racing first waybill (stale), or cancelled (refunded).
                false
            } else {
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
                inserted.rows_affected() == 1
            }
        } else {
            // The seller index shows the waybill: the order's summary changes too.
            let touched = sqlx::query(
                "UPDATE orders SET updated_at_ms = $1, version = version + 1 WHERE id = $2 \
                 AND EXISTS (SELECT 1 FROM shipping_records WHERE order_id = $2 AND version = $3)",
            )
            .bind(now)
            .bind(id.get())
            .bind(expected_version)
            .execute(&mut *tx)
            .await?;
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
            touched.rows_affected() == 1 && updated.rows_affected() == 1
        };
        if !accepted {
            drop(tx); // undoes whatever this attempt wrote
            return Err(self.refusal(id).await?);
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

    /// Why a waybill change wrote nothing: the order moved to the archive or was
    /// cancelled meanwhile, or another change got there first (stale).
    async fn refusal(&self, id: OrderId) -> ShopResult<ShopError> {
        let order = self.orders.load(id).await?.ok_or(ShopError::NotFound("order"))?;
        if order.archived {
            return Ok(ShopError::Archived);
        }
        match order.shipping {
            Some(current) => {
                metrics::counter!("ninefold_stale_waybill_updates_refused_total").increment(1);
                Ok(ShopError::StaleWaybill { current })
            }
            None if order.status == OrderStatus::Cancelled => Ok(ShopError::order_is(OrderStatus::Cancelled)),
            None => Ok(ShopError::NotFound("waybill")),
        }
    }

    /// Every accepted change, oldest first, wherever the order is.
    pub async fn history(&self, seller: &User, id: OrderId) -> ShopResult<Vec<WaybillChange>> {
        let order = self.seller_order(seller, id).await?;
        self.orders.waybill_history(&order).await
    }
}
