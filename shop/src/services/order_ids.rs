//! Allocates order ids from blocks of sequence numbers reserved in the main database.

use crate::db::Db;
use crate::domain::UserId;
use crate::error::ShopResult;
use crate::orders::OrderId;
use std::ops::Range;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Hands out order ids. One per server process: it reserves a block of sequence
/// numbers with one statement, then allocates from memory until the block runs out,
/// so the main database sees one write per `block_size` orders.
///
/// The next block is reserved ahead, in the background, once half of the current
/// one is gone (issue 14): otherwise the checkout that empties a block waits for
/// the database, and every checkout behind it waits for the lock — in a flash
/// sale, all of them at once.
#[derive(Debug)]
pub struct OrderIdAllocator {
    db: Db,
    block_size: i64,
    blocks: Arc<Mutex<Blocks>>,
}

#[derive(Debug, Default)]
struct Blocks {
    /// The unused rest of the current block.
    current: Range<i64>,
    /// The block after it, once reserved ahead.
    next: Option<Range<i64>>,
    /// A reservation ahead is under way.
    refilling: bool,
}

impl OrderIdAllocator {
    pub const DEFAULT_BLOCK_SIZE: i64 = 1000;

    pub fn new(db: Db, block_size: i64) -> Self {
        assert!(block_size > 0, "an id block must hold at least one id");
        Self { db, block_size, blocks: Arc::default() }
    }

    pub async fn next(&self, buyer: UserId) -> ShopResult<OrderId> {
        let mut blocks = self.blocks.lock().await;
        if blocks.current.is_empty() {
            blocks.current = match blocks.next.take() {
                Some(next) => next,
                None => reserve_block(&self.db, self.block_size).await?,
            };
        }
        let sequence = blocks.current.start;
        blocks.current.start += 1;
        if blocks.next.is_none() && !blocks.refilling && blocks.current.end - blocks.current.start <= self.block_size / 2 {
            blocks.refilling = true;
            self.reserve_next_in_background();
        }
        Ok(OrderId::new(sequence, buyer))
    }

    /// Reserves the first block now (at start-up), so the first checkout does not.
    /// A failure is left for that checkout to meet again.
    pub async fn reserve_ahead(&self) {
        let mut blocks = self.blocks.lock().await;
        if blocks.current.is_empty() && blocks.next.is_none() {
            match reserve_block(&self.db, self.block_size).await {
                Ok(block) => blocks.next = Some(block),
                Err(error) => tracing::warn!(%error, "reserving a block of order ids ahead failed"),
            }
        }
    }

    fn reserve_next_in_background(&self) {
        let (db, block_size, blocks) = (self.db.clone(), self.block_size, self.blocks.clone());
        tokio::spawn(async move {
            let reserved = reserve_block(&db, block_size).await;
            let mut blocks = blocks.lock().await;
            blocks.refilling = false;
            match reserved {
                // The current block may have run out meanwhile and been replaced by
                // one reserved on the spot; this one then waits its turn.
                Ok(block) => blocks.next = Some(block),
                Err(error) => tracing::warn!(%error, "reserving the next block of order ids ahead failed; the checkout that needs it will try again"),
            }
        });
    }

    /// Blocks reserved and not yet handed out in full: the current one (if any
    /// id is left) and the one after it.
    pub async fn blocks_in_hand(&self) -> usize {
        let blocks = self.blocks.lock().await;
        usize::from(!blocks.current.is_empty()) + usize::from(blocks.next.is_some())
    }
}

/// Advances the shared counter by one block, only while the block stays inside
/// the id space: a single conditional UPDATE, atomic on both backends.
async fn reserve_block(db: &Db, block_size: i64) -> ShopResult<Range<i64>> {
    let end: Option<i64> = sqlx::query_scalar(
        "UPDATE id_blocks SET next_sequence = next_sequence + $1 \
         WHERE name = 'order' AND next_sequence + $1 <= $2 RETURNING next_sequence",
    )
    .bind(block_size)
    .bind(OrderId::LAST_SEQUENCE + 1)
    .fetch_optional(db.pool())
    .await?;
    let end = end.ok_or_else(|| anyhow::anyhow!("the order id space is exhausted"))?;
    tracing::debug!(first = end - block_size, size = block_size, "reserved a block of order ids");
    Ok(end - block_size..end)
}
