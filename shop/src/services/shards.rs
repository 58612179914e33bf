//! Routing to the order shards (DESIGN.md, failure mode 9): which database holds a
//! buyer's orders, and so any order by its id. The range map is data kept in
//! `main`: stored on the first start, checked against the configuration on every
//! later one.

use crate::db::Db;
use crate::domain::{OrderId, UserId};
use crate::error::ShopResult;
use crate::shard_map::ShardMap;

#[derive(Clone, Debug)]
pub struct Shards {
    dbs: Vec<Db>,
    map: ShardMap,
}

impl Shards {
    /// The configured shard databases under the map stored in `main`. On a first
    /// start (no map stored) the shards split the suffix space evenly and that map
    /// is stored; a later start with another number of shards is refused.
    pub async fn open(main: &Db, dbs: Vec<Db>) -> ShopResult<Self> {
        let map = match stored_map(main).await? {
            Some(map) => map,
            None => {
                store_map(main, &ShardMap::even(dbs.len())).await?;
                stored_map(main).await?.ok_or_else(|| anyhow::anyhow!("the shard map was stored but cannot be read back"))?
            }
        };
        if map.shard_count() != dbs.len() {
            return Err(anyhow::anyhow!(
                "the configuration names {} order shard(s), but this database's shard map (stored in main on its first start) has {}, \
                 starting at suffixes {:?}: orders would be looked for on the wrong shard. Configure those {} shards again.",
                dbs.len(),
                map.shard_count(),
                map.starts(),
                map.shard_count()
            )
            .into());
        }
        Ok(Self { dbs, map })
    }

    /// The shard holding this order (the one of its buyer).
    pub fn of_order(&self, id: OrderId) -> &Db {
        &self.dbs[self.map.shard_for_order(id)]
    }

    /// The shard holding this buyer's orders.
    pub fn of_buyer(&self, buyer: UserId) -> &Db {
        &self.dbs[self.index_of_buyer(buyer)]
    }

    /// The position in [`Shards::all`] of the shard holding this order.
    pub fn index_of_order(&self, id: OrderId) -> usize {
        self.map.shard_for_order(id)
    }

    pub fn index_of_buyer(&self, buyer: UserId) -> usize {
        self.map.shard_for_buyer(buyer)
    }

    /// Every shard, in shard order.
    pub fn all(&self) -> &[Db] {
        &self.dbs
    }
}

async fn stored_map(main: &Db) -> ShopResult<Option<ShardMap>> {
    let starts: Vec<i64> = sqlx::query_scalar("SELECT start_suffix FROM shard_ranges ORDER BY shard").fetch_all(main.pool()).await?;
    if starts.is_empty() {
        return Ok(None);
    }
    let starts = starts.into_iter().map(u32::try_from).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::from)?;
    Ok(Some(ShardMap::from_starts(starts).map_err(|e| anyhow::anyhow!("the stored shard map is invalid: {e}"))?))
}

/// Two servers starting at once on an empty database may both get here: the
/// primary keys let one map win, and both read that one back.
async fn store_map(main: &Db, map: &ShardMap) -> ShopResult<()> {
    let mut tx = main.begin_write().await?;
    for (shard, start) in map.starts().iter().enumerate() {
        sqlx::query("INSERT INTO shard_ranges (shard, start_suffix) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(shard as i64)
            .bind(i64::from(*start))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
