//! The shard map: which physical order shard holds which buyers (DESIGN.md,
//! failure mode 9). Plain data, persisted in `main` on first start so a changed
//! configuration cannot silently re-route existing buyers.

use crate::domain::{OrderId, UserId};
use serde::{Deserialize, Serialize};

/// Which physical shard holds the orders of a suffix range. `starts[k]` is the
/// first suffix of shard `k`; ranges are contiguous and cover 0..=999_999, so a
/// shard can later be split by moving one boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMap {
    starts: Vec<u32>,
}

impl ShardMap {
    const SUFFIXES: u32 = UserId::SUFFIX_SPACE as u32;

    /// `shards` equal ranges.
    pub fn even(shards: usize) -> Self {
        assert!(shards > 0 && shards <= Self::SUFFIXES as usize, "shard count {shards} out of range");
        let width = Self::SUFFIXES as u64;
        Self { starts: (0..shards as u64).map(|k| (k * width / shards as u64) as u32).collect() }
    }

    /// Explicit range starts: must begin at 0, increase strictly, stay below 10^6.
    pub fn from_starts(starts: Vec<u32>) -> Result<Self, String> {
        if starts.first() != Some(&0) {
            return Err("the first shard range must start at suffix 0".to_owned());
        }
        if !starts.windows(2).all(|w| w[0] < w[1]) || starts.last().is_some_and(|&s| s >= Self::SUFFIXES) {
            return Err("shard range starts must increase strictly and stay below 1000000".to_owned());
        }
        Ok(Self { starts })
    }

    /// The first suffix of each shard's range, in shard order.
    pub fn starts(&self) -> &[u32] {
        &self.starts
    }

    pub fn shard_count(&self) -> usize {
        self.starts.len()
    }

    pub fn shard_for_suffix(&self, suffix: u32) -> usize {
        debug_assert!(suffix < Self::SUFFIXES);
        self.starts.partition_point(|&start| start <= suffix) - 1
    }

    pub fn shard_for_buyer(&self, buyer: UserId) -> usize {
        self.shard_for_suffix(buyer.shard_suffix())
    }

    pub fn shard_for_order(&self, order: OrderId) -> usize {
        self.shard_for_suffix(order.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn an_order_routes_to_its_buyers_shard(seq in OrderId::FIRST_SEQUENCE..=OrderId::LAST_SEQUENCE, buyer in (1i64..1_000_000_000).prop_map(UserId::from_sequence), shards in 1usize..64) {
            let id = OrderId::new(seq, buyer);
            let map = ShardMap::even(shards);
            prop_assert_eq!(map.shard_for_order(id), map.shard_for_buyer(buyer));
            prop_assert!(map.shard_for_order(id) < shards);
        }

        #[test]
        fn even_maps_cover_every_suffix_in_order(shards in 1usize..100, suffix in 0u32..1_000_000) {
            let map = ShardMap::even(shards);
            let shard = map.shard_for_suffix(suffix);
            prop_assert!(shard < shards);
            if suffix > 0 {
                prop_assert!(map.shard_for_suffix(suffix - 1) <= shard);
            }
        }
    }

    #[test]
    fn shard_maps_route_by_range() {
        let map = ShardMap::from_starts(vec![0, 500_000, 750_000]).unwrap();
        assert_eq!(map.shard_for_suffix(0), 0);
        assert_eq!(map.shard_for_suffix(499_999), 0);
        assert_eq!(map.shard_for_suffix(500_000), 1);
        assert_eq!(map.shard_for_suffix(999_999), 2);
        assert!(ShardMap::from_starts(vec![1, 2]).is_err());
        assert!(ShardMap::from_starts(vec![0, 5, 5]).is_err());
        assert!(ShardMap::from_starts(vec![0, 1_000_000]).is_err());
        assert_eq!(ShardMap::even(4), ShardMap::from_starts(vec![0, 250_000, 500_000, 750_000]).unwrap());
    }
}
