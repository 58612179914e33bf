//! Server-rendered pages, checked over plain HTTP (the browser suite drives them in Chromium).

use crate::helpers::TestApp;

crate::on_both_backends!(
    product_pages_render_price_and_stock_and_unknown_pages_are_404,
    failed_form_submissions_answer_4xx_never_500,
    anonymous_pages_are_cached_briefly_and_signed_in_pages_never,
    dashboard_pages_answer_sellers_only,
    product_titles_holding_markup_are_rendered_as_text,
    pages_render_while_routes_are_listed_elsewhere_in_the_process,
);

/// The dashboard over plain HTTP: its home redirects to the orders list; a buyer
/// gets 403, another seller's order 404, a garbage cookie is just "signed out".
async fn dashboard_pages_answer_sellers_only(app: TestApp) {
    let page = |path: &'static str, token: Option<String>| {
        let mut request = app.client.get(app.url(path));
        if let Some(token) = token {
            request = request.header("cookie", format!("nf_session={token}"));
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()), response.text().await.unwrap())
        }
    };
    assert_eq!(page("/seller", None).await.1.as_deref(), Some("/seller/orders"));
    let (seller, _) = app.signed_in("dash-seller@example.com", "seller").await;
    let (buyer, _) = app.signed_in("dash-buyer@example.com", "buyer").await;
    let (status, _, body) = page("/seller/orders", Some(seller.clone())).await;
    assert_eq!(status, 200);
    assert!(body.contains("No orders yet"), "{body}");
    let (status, _, body) = page("/seller/products", Some(seller)).await;
    assert_eq!(status, 200);
    assert!(body.contains("List a new product"));
    let (status, _, body) = page("/seller/orders", Some(buyer.clone())).await;
    assert_eq!(status, 403);
    assert!(body.contains("This page is for sellers"));
    assert_eq!(page("/seller/products/new", Some(buyer)).await.0, 403);
    let (status, _, body) = page("/seller/orders", Some("garbage".to_owned())).await;
    assert_eq!(status, 200);
    assert!(body.contains("Sign in to continue"));
    let (other, _) = app.signed_in("dash-other@example.com", "seller").await;
    assert_eq!(page("/seller/orders/1000000000000123456", Some(other.clone())).await.0, 404);
    assert_eq!(page("/seller/products/999999", Some(other)).await.0, 404);
}

async fn anonymous_pages_are_cached_briefly_and_signed_in_pages_never(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let id = app.create_product(&seller, "Kettle", 5000, 4).await["id"].as_i64().unwrap();
    let path = format!("/products/{id}");
    let anonymous = || async { app.client.get(app.url(&path)).send().await.unwrap().text().await.unwrap() };
    assert!(anonymous().await.contains("4 in stock"));
    app.post(&format!("/api/v1/seller/products/{id}/restock"), Some(&seller), &serde_json::json!({"quantity": 5})).await;

    // A shopper with a session always gets a fresh render, and it never leaks to others.
    app.register("b@example.com", "buyer").await;
    let token = app.login("b@example.com").await;
    let signed_in = app.client.get(app.url(&path)).header("cookie", format!("nf_session={token}")).send().await.unwrap().text().await.unwrap();
    assert!(signed_in.contains("9 in stock"));
    assert!(signed_in.contains("signed-in-as"));
    assert!(!anonymous().await.contains("signed-in-as"));

    // The anonymous copy catches up within the cache's lifetime.
    tokio::time::sleep(server::page_cache::TTL + std::time::Duration::from_millis(200)).await;
    assert!(anonymous().await.contains("9 in stock"));
}

async fn failed_form_submissions_answer_4xx_never_500(app: TestApp) {
    app.register("form@example.com", "buyer").await;
    let cases = [
        ("/fn/sign_in", "email=form%40example.com&password=wrong-password", 401, "invalid_credentials"),
        ("/fn/sign_in", "email=not-an-email&password=whatever", 422, "validation_failed"),
        ("/fn/sign_in", "email=form%40example.com", 400, "bad_request"),
        ("/fn/sign_in", "%%%garbage", 400, "bad_request"),
        ("/fn/register", "email=form%40example.com&password=long+enough&name=Again&role=buyer", 409, "email_taken"),
        ("/fn/register", "email=new%40example.com&password=short&name=New&role=buyer", 422, "validation_failed"),
        ("/fn/register", "email=new%40example.com&password=long+enough&name=New&role=admin", 422, "validation_failed"),
        ("/fn/get_product", "id=abc", 404, "not_found"),
    ];
    for (path, form, status, code) in cases {
        let reply = app
            .client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form)
            .send()
            .await
            .unwrap();
        let reply = crate::helpers::Reply::read(reply).await;
        assert_eq!(reply.status.as_u16(), status, "{path} {form}: {}", reply.text);
        assert_eq!(reply.body["code"], code, "{path} {form}: {}", reply.text);
    }
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("sessions").await, 0);
}

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

/// A product title is text wherever the server renders it: in `<title>` (which
/// leptos_meta writes unescaped), in the page and in the catalog.
async fn product_titles_holding_markup_are_rendered_as_text(app: TestApp) {
    let (seller, _) = app.signed_in("xss-seller@example.com", "seller").await;
    for title in ["Y</title><script>alert(3)</script>", "Z\"><img src=x onerror=alert(4)>", "W</script><script>alert(5)</script>"] {
        let id = app.create_product(&seller, title, 1234, 3).await["id"].as_i64().unwrap();
        for path in [format!("/products/{id}"), "/".to_owned()] {
            let body = app.client.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
            assert!(!body.contains(title), "{path} renders the title raw: {body}");
            assert!(!body.contains("<img src=x"), "{path}: {body}");
            assert!(!body.contains("<script>alert"), "{path}: {body}");
        }
        let page = app.client.get(app.url(&format!("/products/{id}"))).send().await.unwrap().text().await.unwrap();
        let head = &page[page.find("<title>").unwrap()..page.find("</head>").unwrap()];
        let escaped = title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        assert!(head.starts_with(&format!("<title>{escaped} · Ninefold</title>")), "{head}");
    }
}

/// Listing the app's routes runs it with resource loading suppressed through a
/// process-wide flag; a page rendered meanwhile whose resource first polled then
/// used to hang until the request timeout (a rare 503 under a full CI run, where
/// every test builds a router). Routes are listed once per process now: asking
/// for them again, from another thread, while pages render, stalls none of them.
async fn pages_render_while_routes_are_listed_elsewhere_in_the_process(app: TestApp) {
    let (seller, _) = app.signed_in("listing-seller@example.com", "seller").await;
    app.create_product(&seller, "Listing lamp", 1500, 3).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lister = std::thread::spawn({
        let stop = stop.clone();
        move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::black_box(server::pages::route_list());
            }
        }
    });
    for n in 0..60 {
        let reply = app.client.get(app.url(&format!("/search?q=lamp&n={n}"))).timeout(std::time::Duration::from_secs(10)).send().await;
        let (status, html) = match reply {
            Ok(reply) => (reply.status().as_u16(), reply.text().await.unwrap_or_default()),
            Err(error) => (0, format!("no answer in 10 s: {error}")),
        };
        assert!(status == 200 && html.contains("Listing lamp"), "render {n}: {status} {}", html.chars().take(500).collect::<String>());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    lister.join().unwrap();
}
