//! Order snapshots, stored once (DESIGN.md, failure mode 2).
//!
//! An order line names its product as sold by the MD5 digest of the product's
//! canonical content. Placing an order enqueues a job carrying that content in the
//! same transaction as the stock take; the job writes the snapshot row later, off
//! the purchase's critical path, and a second write of a digest changes nothing.

use crate::catalog::Product;
use crate::clock::now_ms;
use crate::db::Db;
use crate::error::{ShopError, ShopResult};
use crate::orders::OrderLine;
use crate::services::jobs::{JobKind, Jobs, NewJob};
use crate::snapshot::{Snapshot, digest_with_picture, is_digest};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const JOB_KIND: &str = "snapshot";

/// The content of a product captured when it was ordered: what its snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotJob {
    pub digest: String,
    pub product_id: i64,
    pub title: String,
    pub description: String,
    pub price_cents: i64,
    /// The main picture's key, when the product has one.
    #[serde(default)]
    pub image_key: Option<String>,
}

impl SnapshotJob {
    /// The product as it is now, its main picture included.
    pub fn of(product: &Product) -> Self {
        let image_key = product.images.first().map(|image| image.key.clone());
        Self {
            digest: digest_with_picture(product.title.as_str(), product.description.as_str(), product.price.cents(), image_key.as_deref()),
            product_id: product.id.get(),
            title: product.title.to_string(),
            description: product.description.to_string(),
            price_cents: product.price.cents(),
            image_key,
        }
    }
}

/// Enqueues the snapshot of each product in the caller's `main` transaction. A
/// digest already queued (or written) enqueues nothing.
pub(crate) async fn enqueue_in(tx: &mut Transaction<'static, Any>, products: &[Product]) -> ShopResult<()> {
    enqueue_jobs_in(tx, &products.iter().map(SnapshotJob::of).collect::<Vec<_>>()).await
}

/// Enqueues these snapshot jobs in the caller's `main` transaction.
pub(crate) async fn enqueue_jobs_in(tx: &mut Transaction<'static, Any>, jobs: &[SnapshotJob]) -> ShopResult<()> {
    let payloads = jobs.iter().map(|job| serde_json::to_string(job).map_err(anyhow::Error::from)).collect::<Result<Vec<_>, _>>()?;
    let now = now_ms();
    let new_jobs = jobs
        .iter()
        .zip(&payloads)
        .map(|(job, payload)| NewJob { kind: JOB_KIND, key: format!("{JOB_KIND}:{}", job.digest), payload, since_ms: now })
        .collect::<Vec<_>>();
    Jobs::enqueue_in(tx, &new_jobs).await
}

/// The snapshot jobs this process committed lately, by digest. A flash sale's
/// take batches all sell the same product, and each used to enqueue its snapshot
/// again: a statement (a round trip inside the hot product's transaction) that
/// the job's key then ignored. A digest noted here is skipped for
/// [`RecentSnapshots::FRESH_FOR`]: its job exists, queued, or done (and then its
/// snapshot is written), since job rows are only ever deleted once done. The
/// time limit bounds how long a job row deleted by hand goes unnoticed.
#[derive(Clone, Debug, Default)]
pub(crate) struct RecentSnapshots {
    noted: Arc<Mutex<HashMap<String, Instant>>>,
}

impl RecentSnapshots {
    const FRESH_FOR: Duration = Duration::from_secs(60);
    /// Above this many digests the stale ones are dropped, and if that is not
    /// enough, all of them (a catalog edited constantly must not grow the map
    /// without end; forgetting costs only an enqueue the job's key ignores).
    const MAX_NOTED: usize = 10_000;

    /// The jobs not noted lately: those to enqueue.
    pub(crate) fn not_noted(&self, jobs: Vec<SnapshotJob>) -> Vec<SnapshotJob> {
        let noted = self.noted.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        jobs.into_iter().filter(|job| noted.get(&job.digest).is_none_or(|at| at.elapsed() >= Self::FRESH_FOR)).collect()
    }

    /// Notes the jobs as enqueued; call once their transaction has committed.
    pub(crate) fn note(&self, jobs: &[SnapshotJob]) {
        let mut noted = self.noted.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if noted.len() + jobs.len() > Self::MAX_NOTED {
            noted.retain(|_, at| at.elapsed() < Self::FRESH_FOR);
            if noted.len() + jobs.len() > Self::MAX_NOTED {
                noted.clear();
            }
        }
        let now = Instant::now();
        noted.extend(jobs.iter().map(|job| (job.digest.clone(), now)));
    }
}

#[derive(Clone, Debug)]
pub struct Snapshots {
    main: Db,
}

impl Snapshots {
    pub fn new(main: Db) -> Self {
        Self { main }
    }

    /// The queue's handler for snapshot jobs.
    pub fn job_kind(&self) -> JobKind {
        let main = self.main.clone();
        JobKind::new(JOB_KIND, 60_000, move |payload| {
            let main = main.clone();
            async move {
                let job: SnapshotJob = serde_json::from_str(&payload).map_err(anyhow::Error::from)?;
                write(&main, &job).await
            }
        })
    }

    /// A product as it was sold, by its content digest.
    pub async fn get(&self, digest: &str) -> ShopResult<Snapshot> {
        if !is_digest(digest) {
            return Err(ShopError::NotFound("snapshot"));
        }
        let row = sqlx::query("SELECT digest, product_id, title, description, price_cents, image_key, created_at_ms FROM snapshots WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.main.pool())
            .await?
            .ok_or(ShopError::NotFound("snapshot"))?;
        Ok(Snapshot {
            digest: row.try_get("digest")?,
            product_id: row.try_get("product_id")?,
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            price_cents: row.try_get("price_cents")?,
            image_key: row.try_get("image_key")?,
            created_at: crate::clock::rfc3339(row.try_get("created_at_ms")?),
        })
    }

    /// Each line's picture as it was sold (a URL, the card size once made), from its
    /// snapshot; `None` for a line without one, or whose snapshot is not written yet.
    pub async fn pictures_as_sold(&self, lines: &[OrderLine]) -> ShopResult<Vec<Option<String>>> {
        let mut pictures = Vec::with_capacity(lines.len());
        for line in lines {
            let key = match self.get(&line.snapshot_digest).await {
                Ok(snapshot) => snapshot.image_key,
                Err(ShopError::NotFound(_)) => None,
                Err(other) => return Err(other),
            };
            let picture = match key {
                Some(key) => {
                    let card: Option<String> = sqlx::query_scalar("SELECT variant_key FROM image_variants WHERE image_key = $1 AND size = 'card'")
                        .bind(&key)
                        .fetch_optional(self.main.pool())
                        .await?;
                    Some(crate::catalog::ProductImage::url_of(card.as_deref().unwrap_or(&key)))
                }
                None => None,
            };
            pictures.push(picture);
        }
        Ok(pictures)
    }

    /// Each line's title as it was sold: from its snapshot, or, until the snapshot
    /// job has run, from the product as it is now (and if that is gone too, its id).
    pub async fn titles_as_sold(&self, lines: &[OrderLine]) -> ShopResult<Vec<String>> {
        let mut titles = Vec::with_capacity(lines.len());
        for line in lines {
            let title = match self.get(&line.snapshot_digest).await {
                Ok(snapshot) => snapshot.title,
                Err(ShopError::NotFound(_)) => {
                    let now: Option<String> = sqlx::query_scalar("SELECT title FROM products WHERE id = $1")
                        .bind(line.product_id.get())
                        .fetch_optional(self.main.pool())
                        .await?;
                    now.unwrap_or_else(|| format!("Product {}", line.product_id))
                }
                Err(other) => return Err(other),
            };
            titles.push(title);
        }
        Ok(titles)
    }
}

/// Idempotent: the digest is the key, and a second write of it changes nothing.
async fn write(main: &Db, job: &SnapshotJob) -> ShopResult<()> {
    if digest_with_picture(&job.title, &job.description, job.price_cents, job.image_key.as_deref()) != job.digest {
        return Err(anyhow::anyhow!("snapshot job content does not match its digest {}", job.digest).into());
    }
    sqlx::query(
        "INSERT INTO snapshots (digest, product_id, title, description, price_cents, image_key, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (digest) DO NOTHING",
    )
    .bind(&job.digest)
    .bind(job.product_id)
    .bind(&job.title)
    .bind(&job.description)
    .bind(job.price_cents)
    .bind(&job.image_key)
    .bind(now_ms())
    .execute(main.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(digest: &str) -> SnapshotJob {
        SnapshotJob { digest: digest.into(), product_id: 1, title: "Mug".into(), description: String::new(), price_cents: 100, image_key: None }
    }

    fn digests(jobs: &[SnapshotJob]) -> Vec<&str> {
        jobs.iter().map(|job| job.digest.as_str()).collect()
    }

    #[test]
    fn a_noted_content_is_not_enqueued_again_and_a_new_one_is() {
        let recent = RecentSnapshots::default();
        assert_eq!(digests(&recent.not_noted(vec![job("a"), job("b")])), ["a", "b"]);
        recent.note(&[job("a")]);
        assert_eq!(digests(&recent.not_noted(vec![job("a"), job("b")])), ["b"]);
    }

    #[test]
    fn the_noted_contents_stay_bounded() {
        let recent = RecentSnapshots::default();
        for i in 0..RecentSnapshots::MAX_NOTED + 5 {
            recent.note(&[job(&i.to_string())]);
            assert!(recent.noted.lock().unwrap().len() <= RecentSnapshots::MAX_NOTED);
        }
        // Forgetting costs only an enqueue the job's key ignores.
        assert_eq!(digests(&recent.not_noted(vec![job("0")])), ["0"]);
    }
}
