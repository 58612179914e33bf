//! Allocates order ids from blocks of sequence numbers reserved in the main database.

use crate::db::Db;
use crate::domain::UserId;
use crate::error::ShopResult;
use crate::orders::OrderId;
use std::ops::Range;
use tokio::sync::Mutex;

/// Hands out order ids. One per server process: it reserves a block of sequence
/// numbers with one statement, then allocates from memory until the block runs out,
/// so the main database sees one write per `block_size` orders.
#[derive(Debug)]
pub struct OrderIdAllocator {
    db: Db,
    block_size: i64,
    /// The unused rest of the current block.
    block: Mutex<Range<i64>>,
}

impl OrderIdAllocator {
    pub const DEFAULT_BLOCK_SIZE: i64 = 1000;

    pub fn new(db: Db, block_size: i64) -> Self {
        assert!(block_size > 0, "an id block must hold at least one id");
        Self { db, block_size, block: Mutex::new(0..0) }
    }

    pub async fn next(&self, buyer: UserId) -> ShopResult<OrderId> {
        let mut block = self.block.lock().await;
        if block.is_empty() {
            *block = self.reserve_block().await?;
        }
        let sequence = block.start;
        block.start += 1;
        Ok(OrderId::new(sequence, buyer))
    }

    /// Advances the shared counter by one block, only while the block stays inside
    /// the id space: a single conditional UPDATE, atomic on both backends.
    async fn reserve_block(&self) -> ShopResult<Range<i64>> {
        let end: Option<i64> = sqlx::query_scalar(
            "UPDATE id_blocks SET next_sequence = next_sequence + $1 \
             WHERE name = 'order' AND next_sequence + $1 <= $2 RETURNING next_sequence",
        )
        .bind(self.block_size)
        .bind(OrderId::LAST_SEQUENCE + 1)
        .fetch_optional(self.db.pool())
        .await?;
        let end = end.ok_or_else(|| anyhow::anyhow!("the order id space is exhausted"))?;
        tracing::debug!(first = end - self.block_size, size = self.block_size, "reserved a block of order ids");
        Ok(end - self.block_size..end)
    }
}
