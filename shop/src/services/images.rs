//! Product images (issue 16): checked on upload, stored once per content, resized
//! by a job.
//!
//! An upload is refused (and nothing stored) unless its bytes are a JPEG, PNG or
//! WebP — recognised from the bytes, and matching the content type the client
//! declared — of at most [`MAX_BYTES`] and [`MAX_PIXELS`], that decodes whole. The
//! dimensions are read from the header before anything is decoded, so a
//! decompression bomb is refused without allocating its pixels. The bytes go to
//! the object store under `originals/<sha256>.<ext>` (a second upload of the same
//! bytes writes nothing); the database holds which product shows which key. The
//! `card` and `page` sizes are made by a job in the queue, never in the request;
//! until it has run, pages show a placeholder of the right shape.

use crate::accounts::User;
use crate::catalog::ProductImage;
use crate::clock::now_ms;
use crate::db::Db;
use crate::domain::{FieldError, ProductId};
use crate::error::{ShopError, ShopResult};
use crate::services::catalog::Catalog;
use crate::services::jobs::{JobKind, Jobs, NewJob};
use bytes::Bytes;
use image::{ImageFormat, ImageReader};
use object_store::{ObjectStore, ObjectStoreExt};
use object_store::path::Path as StorePath;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

/// The largest upload.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// The most pixels an image may have (width × height), and the longest side.
pub const MAX_PIXELS: u64 = 40_000_000;
pub const MAX_SIDE: u32 = 12_000;
/// The most images one product shows.
pub const MAX_PER_PRODUCT: i64 = 10;
/// The derived sizes: name and longest side.
pub const SIZES: [(&str, u32); 2] = [("card", 480), ("page", 1200)];

pub const JOB_KIND: &str = "image_variants";

/// The formats accepted, with the content type and file extension of each.
fn accepted(format: ImageFormat) -> Option<(&'static str, &'static str)> {
    match format {
        ImageFormat::Jpeg => Some(("image/jpeg", "jpg")),
        ImageFormat::Png => Some(("image/png", "png")),
        ImageFormat::WebP => Some(("image/webp", "webp")),
        _ => None,
    }
}

/// Alt text: trimmed, 0 to 200 characters on one line.
pub fn alt_text(raw: &str) -> Result<String, FieldError> {
    crate::domain::one_line("alt", raw, 0, 200)
}

#[derive(Clone)]
pub struct Images {
    main: Db,
    store: Arc<dyn ObjectStore>,
    catalog: Catalog,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images").field("store", &self.store.to_string()).finish()
    }
}

/// Image bytes checked: what they are and how big.
struct Checked {
    content_type: &'static str,
    extension: &'static str,
    width: u32,
    height: u32,
}

impl Images {
    pub fn new(main: Db, store: Arc<dyn ObjectStore>, catalog: Catalog) -> Self {
        Self { main, store, catalog }
    }

    /// Adds an image to the seller's product, last in its order. The same bytes
    /// added again to the same product give the image already there.
    pub async fn add(&self, seller: &User, product: ProductId, bytes: Bytes, declared_type: Option<&str>, alt: String) -> ShopResult<ProductImage> {
        self.catalog.owned(seller, product).await?;
        let checked = check(&bytes, declared_type)?;
        let key = format!("originals/{}.{}", hex::encode(Sha256::digest(&bytes)), checked.extension);
        if self.store.head(&StorePath::from(key.as_str())).await.is_err() {
            self.store.put(&StorePath::from(key.as_str()), bytes.into()).await.map_err(store_error)?;
        }
        let mut tx = self.main.begin_write().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM product_images WHERE product_id = $1").bind(product.get()).fetch_one(&mut *tx).await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT position FROM product_images WHERE product_id = $1 AND image_key = $2").bind(product.get()).bind(&key).fetch_optional(&mut *tx).await?;
        if existing.is_none() {
            if count >= MAX_PER_PRODUCT {
                return Err(FieldError::new("file", format!("a product shows at most {MAX_PER_PRODUCT} images")).into());
            }
            sqlx::query(
                "INSERT INTO product_images (product_id, position, image_key, alt, width, height, content_type, created_at_ms) \
                 VALUES ($1, (SELECT COALESCE(MAX(position), 0) + 1 FROM product_images WHERE product_id = $1), $2, $3, $4, $5, $6, $7)",
            )
            .bind(product.get())
            .bind(&key)
            .bind(&alt)
            .bind(i64::from(checked.width))
            .bind(i64::from(checked.height))
            .bind(checked.content_type)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            Jobs::enqueue_in(&mut tx, &[NewJob { kind: JOB_KIND, key: format!("{JOB_KIND}:{key}"), payload: &key, since_ms: now_ms() }]).await?;
        }
        tx.commit().await?;
        let images = self.catalog.get_current(product).await?.images;
        images.into_iter().find(|i| i.key == key).ok_or_else(|| anyhow::anyhow!("an image just added is missing").into())
    }

    /// An object's bytes and content type, for serving; `None` if there is none.
    pub async fn object(&self, key: &str) -> ShopResult<Option<(Bytes, &'static str)>> {
        let Some(content_type) = servable(key) else { return Ok(None) };
        match self.store.get(&StorePath::from(key)).await {
            Ok(found) => Ok(Some((found.bytes().await.map_err(store_error)?, content_type))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(store_error(other)),
        }
    }

    /// The queue's handler: makes an original's `card` and `page` sizes (WebP,
    /// never larger than the original) and records them. Idempotent.
    pub fn job_kind(&self) -> JobKind {
        let (main, store) = (self.main.clone(), self.store.clone());
        JobKind::new(JOB_KIND, 60_000, move |key| {
            let (main, store) = (main.clone(), store.clone());
            async move { make_variants(&main, store.as_ref(), &key).await }
        })
    }
}

async fn make_variants(main: &Db, store: &dyn ObjectStore, key: &str) -> ShopResult<()> {
    let original = store.get(&StorePath::from(key)).await.map_err(store_error)?.bytes().await.map_err(store_error)?;
    let stem = key.trim_start_matches("originals/").split('.').next().unwrap_or_default().to_owned();
    let resized = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(&'static str, Vec<u8>, u32, u32)>> {
        let decoded = ImageReader::new(Cursor::new(&original[..])).with_guessed_format()?.decode()?;
        SIZES
            .iter()
            .map(|&(size, longest)| {
                let image = if decoded.width().max(decoded.height()) > longest { decoded.thumbnail(longest, longest) } else { decoded.clone() };
                let mut out = Vec::new();
                image.to_rgba8().write_to(&mut Cursor::new(&mut out), ImageFormat::WebP)?;
                Ok((size, out, image.width(), image.height()))
            })
            .collect()
    })
    .await
    .map_err(anyhow::Error::from)??;
    for (size, bytes, width, height) in resized {
        let variant = format!("variants/{stem}-{size}.webp");
        store.put(&StorePath::from(variant.as_str()), Bytes::from(bytes).into()).await.map_err(store_error)?;
        sqlx::query("INSERT INTO image_variants (image_key, size, variant_key, width, height) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (image_key, size) DO NOTHING")
            .bind(key)
            .bind(size)
            .bind(&variant)
            .bind(i64::from(width))
            .bind(i64::from(height))
            .execute(main.pool())
            .await?;
    }
    Ok(())
}

/// What the bytes are: refused with 413 (too many bytes), 415 (not a JPEG, PNG or
/// WebP, or not what the client said it sent) or 422 (too many pixels, or does not
/// decode).
fn check(bytes: &[u8], declared_type: Option<&str>) -> ShopResult<Checked> {
    if bytes.len() > MAX_BYTES {
        return Err(ShopError::TooLarge { max_bytes: MAX_BYTES as u64 });
    }
    let format = image::guess_format(bytes).map_err(|_| ShopError::UnsupportedMedia)?;
    let (content_type, extension) = accepted(format).ok_or(ShopError::UnsupportedMedia)?;
    if let Some(declared) = declared_type.map(|t| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        && !declared.is_empty()
        && declared != "application/octet-stream"
        && declared != content_type
        && !(declared == "image/jpg" && content_type == "image/jpeg")
    {
        return Err(ShopError::UnsupportedMedia);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader.into_dimensions().map_err(|_| FieldError::new("file", "is not a readable image"))?;
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(FieldError::new("file", format!("is {width}×{height} pixels; at most {MAX_PIXELS} pixels and {MAX_SIDE} on a side")).into());
    }
    reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4 + 1024 * 1024);
    reader.limits(limits);
    reader.decode().map_err(|_| FieldError::new("file", "does not decode as an image (damaged or cut short?)"))?;
    Ok(Checked { content_type, extension, width, height })
}

/// The content type of a key we serve, if it is one: `originals/<sha256>.<ext>` or
/// `variants/<sha256>-<size>.webp`. Anything else is not ours.
fn servable(key: &str) -> Option<&'static str> {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if let Some(name) = key.strip_prefix("originals/") {
        let (stem, ext) = name.split_once('.')?;
        if !hex64(stem) {
            return None;
        }
        return match ext {
            "jpg" => Some("image/jpeg"),
            "png" => Some("image/png"),
            "webp" => Some("image/webp"),
            _ => None,
        };
    }
    let name = key.strip_prefix("variants/")?.strip_suffix(".webp")?;
    let (stem, size) = name.rsplit_once('-')?;
    (hex64(stem) && SIZES.iter().any(|(s, _)| *s == size)).then_some("image/webp")
}

fn store_error(error: object_store::Error) -> ShopError {
    ShopError::Internal(anyhow::anyhow!("the image store: {error}"))
}

/// The store named by a URL: `file:///var/lib/ninefold/images` (the default is a
/// folder under the data folder), `s3://bucket/prefix` with `options` such as
/// `region`, `endpoint`, `access_key_id`, `secret_access_key` (any S3-compatible store).
pub fn open_store(url: &str, options: &HashMap<String, String>) -> anyhow::Result<Arc<dyn ObjectStore>> {
    if let Some(folder) = url.strip_prefix("file://") {
        std::fs::create_dir_all(folder)?;
        return Ok(Arc::new(object_store::local::LocalFileSystem::new_with_prefix(folder)?));
    }
    let parsed = url::Url::parse(url)?;
    let (store, prefix) = object_store::parse_url_opts(&parsed, options.iter())?;
    Ok(Arc::new(object_store::prefix::PrefixStore::new(store, prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_keys_are_served() {
        let hex = "a".repeat(64);
        assert_eq!(servable(&format!("originals/{hex}.png")), Some("image/png"));
        assert_eq!(servable(&format!("variants/{hex}-card.webp")), Some("image/webp"));
        for bad in ["../etc/passwd".to_owned(), format!("originals/{hex}.svg"), format!("variants/{hex}-huge.webp"), format!("originals/../{hex}.png"), "originals/x.png".to_owned()] {
            assert_eq!(servable(&bad), None, "{bad}");
        }
    }
}
