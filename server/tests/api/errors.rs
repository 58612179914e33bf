use crate::helpers::TestApp;
use serde_json::json;

crate::on_both_backends!(malformed_requests_get_clear_problems, unknown_things_get_404_problems);

async fn malformed_requests_get_clear_problems(app: TestApp) {
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    let raw = |body: &'static str, content_type: &'static str| {
        app.client.post(app.url("/api/v1/seller/products")).bearer_auth(&seller).header("content-type", content_type).body(body).send()
    };
    let reply = crate::helpers::Reply::read(raw("{\"title\": ", "application/json").await.unwrap()).await;
    reply.assert_problem(400, "malformed_json");
    let reply = crate::helpers::Reply::read(raw("{\"title\": \"x\"} trailing", "application/json").await.unwrap()).await;
    reply.assert_problem(400, "malformed_json");
    let reply = crate::helpers::Reply::read(raw("[1, 2]", "application/json").await.unwrap()).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let reply = crate::helpers::Reply::read(raw("title=x", "application/x-www-form-urlencoded").await.unwrap()).await;
    reply.assert_problem(415, "unsupported_media_type");

    let huge = format!("{{\"title\": \"{}\", \"price_cents\": 1, \"stock\": 1}}", "x".repeat(200_000));
    // The server refuses without reading the body and closes the connection, so
    // this request must not leave a connection behind for the next one to reuse.
    let reply = app
        .client
        .post(app.url("/api/v1/seller/products"))
        .bearer_auth(&seller)
        .header("content-type", "application/json")
        .header("connection", "close")
        .body(huge)
        .send()
        .await
        .unwrap();
    crate::helpers::Reply::read(reply).await.assert_problem(413, "body_too_large");

    let reply = app.client.delete(app.url("/api/v1/products/1")).send().await.unwrap();
    crate::helpers::Reply::read(reply).await.assert_problem(405, "method_not_allowed");
    assert_eq!(app.count("products").await, 0);
}

async fn unknown_things_get_404_problems(app: TestApp) {
    for path in ["/api/v1/products/999999", "/api/v1/products/abc", "/api/v1/products/-1", "/api/v1/products/99999999999999999999999"] {
        app.get(path, None).await.assert_problem(404, "not_found");
    }
    app.get("/api/v1/no/such/route", None).await.assert_problem(404, "no_such_route");
    let (seller, _) = app.signed_in("s@example.com", "seller").await;
    app.patch("/api/v1/seller/products/424242", Some(&seller), &json!({"expected_version": 1, "title": "x"})).await.assert_problem(404, "not_found");
}
