//! Server-rendered pages, checked over plain HTTP (the browser suite drives them in Chromium).

use crate::helpers::TestApp;

crate::on_both_backends!(product_pages_render_price_and_stock_and_unknown_pages_are_404);

async fn product_pages_render_price_and_stock_and_unknown_pages_are_404(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let id = app.create_product(&seller, "Green <Tea>", 1250, 9).await["id"].as_i64().unwrap();

    let home = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(html.contains("Green &lt;Tea&gt;"), "titles are escaped");
    assert!(html.contains("$12.50"));

    let page = app.client.get(app.url(&format!("/products/{id}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("9 in stock"));

    for path in ["/products/999999", "/products/not-a-number", "/no-such-page"] {
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 404, "{path}");
        assert!(page.text().await.unwrap().contains("find that page"), "{path} shows the friendly 404 page");
    }
    let garbage_cookie = app.client.get(app.url("/")).header("cookie", "nf_session=garbage!!; theme=dark").send().await.unwrap();
    assert_eq!(garbage_cookie.status(), 200);
}
