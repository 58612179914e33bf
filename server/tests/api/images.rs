//! Product images: what an upload must be, stored once per content, sized by the
//! job, served as immutable; and every refusal stores nothing.

use crate::helpers::TestApp;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

crate::on_both_backends!(
    an_image_is_stored_once_sized_by_the_job_and_served_immutable,
    anything_but_a_sound_small_jpeg_png_or_webp_is_refused_and_nothing_is_stored,
    the_dashboard_form_adds_a_picture_and_explains_a_refusal,
    an_order_keeps_the_picture_it_was_sold_with,
);

/// A `width`×`height` PNG with a colour gradient.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(image).write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// A PNG whose header claims `width`×`height` (with a valid checksum) but holds
/// the pixels of a 2×2 image: what a decompression bomb looks like before decoding.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = png(2, 2);
    // Signature (8), length (4), "IHDR" (4), then width and height; the CRC covers type + data (17 bytes).
    bytes[16..20].copy_from_slice(&width.to_be_bytes());
    bytes[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

async fn upload(app: &TestApp, token: &str, product: i64, bytes: Vec<u8>, content_type: &str) -> crate::helpers::Reply {
    let form = Form::new().part("file", Part::bytes(bytes).file_name("picture").mime_str(content_type).unwrap()).text("alt", "A lamp on a desk");
    let reply = app.client.post(app.url(&format!("/api/v1/seller/products/{product}/images"))).bearer_auth(token).multipart(form).send().await.unwrap();
    crate::helpers::Reply::read(reply).await
}

async fn stored_originals(app: &TestApp) -> usize {
    let folder = app.data_dir().join("images").join("originals");
    std::fs::read_dir(folder).map(|entries| entries.count()).unwrap_or(0)
}

async fn run_jobs(app: &TestApp) {
    app.shop.jobs.run_due(shop::clock::now_ms(), 100).await.unwrap();
}

async fn an_image_is_stored_once_sized_by_the_job_and_served_immutable(app: TestApp) {
    let (seller, _) = app.signed_in("pictures@example.com", "seller").await;
    let product = app.create_product(&seller, "Desk lamp", 2500, 3).await["id"].as_i64().unwrap();
    let bytes = png(1600, 900);
    let first = upload(&app, &seller, product, bytes.clone(), "image/png").await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!((first.body["width"].as_u64(), first.body["height"].as_u64()), (Some(1600), Some(900)));
    let key = first.body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("originals/") && key.ends_with(".png"), "{key}");
    let again = upload(&app, &seller, product, bytes, "image/png").await;
    assert_eq!((again.status.as_u16(), again.body["key"].as_str()), (201, Some(key.as_str())), "the same bytes, the same key");
    assert_eq!(stored_originals(&app).await, 1, "stored once");
    let shown = app.get(&format!("/api/v1/products/{product}"), None).await.body;
    assert_eq!(shown["images"].as_array().unwrap().len(), 1, "{shown}");
    assert!(shown["images"][0]["card_url"].is_null(), "no sizes before the job has run");

    let served = app.client.get(app.url(shown["images"][0]["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["cache-control"], "public, max-age=31536000, immutable");

    run_jobs(&app).await;
    let shown = app.get(&format!("/api/v1/products/{product}"), None).await.body;
    let card = shown["images"][0]["card_url"].as_str().expect("a card size after the job").to_owned();
    let served = app.client.get(app.url(&card)).send().await.unwrap();
    assert_eq!((served.status().as_u16(), served.headers()["content-type"].to_str().unwrap()), (200, "image/webp"));
    assert_eq!(&served.bytes().await.unwrap()[8..12], b"WEBP", "a WebP file");
    assert!(shown["images"][0]["page_url"].is_string());
    // Keys are content hashes, and nothing else is served.
    for path in ["/images/../main.db", "/images/originals/abc.png", "/images/variants/x-card.webp"] {
        assert_eq!(app.client.get(app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }
}

async fn anything_but_a_sound_small_jpeg_png_or_webp_is_refused_and_nothing_is_stored(app: TestApp) {
    let (seller, _) = app.signed_in("refusals@example.com", "seller").await;
    let product = app.create_product(&seller, "Vase", 1500, 3).await["id"].as_i64().unwrap();
    let mut truncated = png(300, 300);
    truncated.truncate(truncated.len() / 2);
    let mut huge = png(10, 10);
    huge.resize(6 * 1024 * 1024, 0);
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        ("text", b"hello, not a picture".to_vec(), "image/png", 415),
        ("an svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(), "image/svg+xml", 415),
        ("a PNG that says it is a JPEG", png(20, 20), "image/jpeg", 415),
        ("a decompression bomb", png_claiming(11_000, 11_000), "image/png", 422),
        ("cut short", truncated, "image/png", 422),
    ];
    for (what, bytes, content_type, status) in cases {
        let reply = upload(&app, &seller, product, bytes, content_type).await;
        assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.text);
        assert_eq!(reply.content_type(), "application/problem+json", "{what}");
    }
    let (other, _) = app.signed_in("someone-else@example.com", "seller").await;
    upload(&app, &other, product, png(20, 20), "image/png").await.assert_problem(404, "not_found");
    let (buyer, _) = app.signed_in("a-buyer@example.com", "buyer").await;
    upload(&app, &buyer, product, png(20, 20), "image/png").await.assert_problem(403, "forbidden");
    let not_multipart = app.client.post(app.url(&format!("/api/v1/seller/products/{product}/images"))).bearer_auth(&seller).body("plain").send().await.unwrap();
    let not_multipart = crate::helpers::Reply::read(not_multipart).await;
    assert_eq!((not_multipart.status.as_u16(), not_multipart.content_type()), (415, "application/problem+json"), "{}", not_multipart.text);
    let no_file = app.client.post(app.url(&format!("/api/v1/seller/products/{product}/images"))).bearer_auth(&seller).multipart(Form::new().text("alt", "x")).send().await.unwrap();
    assert_eq!(no_file.status(), 422);
    assert_eq!(app.count("product_images").await, 0);
    assert_eq!(stored_originals(&app).await, 0, "nothing stored");
    let shown: Value = app.get(&format!("/api/v1/products/{product}"), None).await.body;
    assert_eq!(shown["images"], serde_json::json!([]));
    // Too large: the server answers before reading the rest and drops the
    // connection, so this one goes on a connection of its own.
    let form = Form::new().part("file", Part::bytes(huge).file_name("huge.png").mime_str("image/png").unwrap());
    let reply = reqwest::Client::new().post(app.url(&format!("/api/v1/seller/products/{product}/images"))).bearer_auth(&seller).multipart(form).send().await.unwrap();
    let reply = crate::helpers::Reply::read(reply).await;
    assert_eq!((reply.status.as_u16(), reply.content_type()), (413, "application/problem+json"), "{}", reply.text);
    assert_eq!(app.count("product_images").await, 0);
}

async fn the_dashboard_form_adds_a_picture_and_explains_a_refusal(app: TestApp) {
    let (seller, _) = app.signed_in("form-pictures@example.com", "seller").await;
    let product = app.create_product(&seller, "Stool", 4500, 3).await["id"].as_i64().unwrap();
    let post = |bytes: Vec<u8>, content_type: &'static str| {
        let (app, seller) = (&app, seller.clone());
        async move {
            let form = Form::new().part("file", Part::bytes(bytes).file_name("stool.png").mime_str(content_type).unwrap()).text("alt", "A stool");
            app.client.post(app.url(&format!("/seller/products/{product}/images"))).header("cookie", format!("nf_session={seller}")).header("origin", app.base.clone()).multipart(form).send().await.unwrap()
        }
    };
    let added = post(png(64, 48), "image/png").await;
    assert_eq!(added.status(), 303);
    assert_eq!(added.headers()["location"], format!("/seller/products/{product}?image=added").as_str());
    let refused = post(b"nope".to_vec(), "image/png").await;
    assert_eq!(refused.status(), 303);
    assert!(refused.headers()["location"].to_str().unwrap().contains("image_error="), "{:?}", refused.headers()["location"]);
    assert_eq!(app.count("product_images").await, 1);
    let page = app.client.get(app.url(&format!("/products/{product}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-testid=\"picture-placeholder\""), "a placeholder until the job has run");
    assert!(page.contains("width=\"64\"") && page.contains("height=\"48\""), "the picture's shape is known before it loads");
}

/// The snapshot of a product with a picture names the picture: the order shows it
/// as sold, and a product without one keeps the digest it always had.
async fn an_order_keeps_the_picture_it_was_sold_with(app: TestApp) {
    let (seller, _) = app.signed_in("sold-with@example.com", "seller").await;
    let product = app.create_product(&seller, "Teapot", 3000, 5).await;
    let id = product["id"].as_i64().unwrap();
    let key = upload(&app, &seller, id, png(40, 40), "image/png").await.body["key"].as_str().unwrap().to_owned();
    let (buyer, _) = app.signed_in("sold-to@example.com", "buyer").await;
    let checkout = app.post("/api/v1/checkout", Some(&buyer), &serde_json::json!({"lines": [{"product_id": id, "quantity": 1}]})).await.body;
    let body = serde_json::json!({"order_id": checkout["order_id"], "checkout_token": checkout["checkout_token"], "lines": checkout["lines"],
        "shipping_address": {"name": "Ann", "line1": "1 St", "city": "C", "postal_code": "1", "country": "NL"}});
    let order = app.post("/api/v1/orders", Some(&buyer), &body).await.body;
    let digest = order["lines"][0]["snapshot_digest"].as_str().unwrap().to_owned();
    assert_ne!(digest, shop::snapshot::digest("Teapot", "", 3000), "the picture is part of the content sold");
    run_jobs(&app).await;
    let snapshot = app.get(&format!("/api/v1/snapshots/{digest}"), None).await.body;
    assert_eq!(snapshot["image_key"], key.as_str(), "{snapshot}");
    let page = app.client.get(app.url(&format!("/orders/{}", order["id"].as_str().unwrap()))).header("cookie", format!("nf_session={buyer}")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-testid=\"line-picture\""), "the order page shows the picture as sold");
}
