use crate::helpers::TestApp;

crate::on_both_backends!(health_answers_when_the_databases_do, the_openapi_document_covers_every_route, warming_the_connections_again_works_and_changes_nothing);

/// Start-up warms every PostgreSQL connection (a read of every table, planned
/// once); doing it again on a running shop succeeds, touches no data, and the
/// shop goes on answering. On SQLite it is a no-op.
async fn warming_the_connections_again_works_and_changes_nothing(app: TestApp) {
    let (seller, _) = app.signed_in("warm-seller@example.com", "seller").await;
    app.create_product(&seller, "Lamp", 4000, 7).await;
    let before = app.get("/api/v1/products", None).await.body;
    for db in app.shop.databases.all() {
        db.warm_connections().await.unwrap_or_else(|e| panic!("warming {}: {e}", db.name()));
    }
    assert_eq!(app.get("/api/v1/products", None).await.body, before);
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

async fn health_answers_when_the_databases_do(app: TestApp) {
    let reply = app.get("/healthz", None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.body["roles"]["main"], "up");
    app.shop.databases.shards[0].pool().close().await;
    let down = app.get("/healthz", None).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.body["roles"]["shard_0"], "down");
    assert_eq!(down.body["roles"]["shard_1"], "up");
    assert!(!down.text.to_lowercase().contains("pool") && !down.text.contains("error"), "no error text: {}", down.text);
}

async fn the_openapi_document_covers_every_route(app: TestApp) {
    let reply = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(reply.status, 200);
    let paths = reply.body["paths"].as_object().expect("paths");
    let expected = [
        ("/healthz", "get"),
        ("/api/v1/openapi.json", "get"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/logout-all", "post"),
        ("/api/v1/auth/password", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/products", "get"),
        ("/api/v1/products/{id}", "get"),
        ("/api/v1/seller/products", "post"),
        ("/api/v1/seller/products/{id}", "patch"),
        ("/api/v1/seller/products/{id}/restock", "post"),
        ("/api/v1/checkout", "post"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders", "get"),
        ("/api/v1/orders/history", "get"),
        ("/api/v1/categories", "get"),
        ("/api/v1/seller/products/{id}/images", "post"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/cancel", "post"),
        ("/api/v1/snapshots/{digest}", "get"),
        ("/api/v1/cart", "get"),
        ("/api/v1/cart/lines/{product_id}", "put"),
        ("/api/v1/cart/merge", "post"),
        ("/api/v1/wallet", "get"),
        ("/api/v1/wallet/top-up", "post"),
        ("/api/v1/orders/{id}/pay", "post"),
        ("/api/v1/orders/{id}/confirm-receipt", "post"),
        ("/api/v1/admin/reconcile", "get"),
        ("/api/v1/seller/orders", "get"),
        ("/api/v1/seller/orders/{id}", "get"),
        ("/api/v1/seller/orders/{id}/shipping", "put"),
        ("/api/v1/seller/orders/{id}/shipping/history", "get"),
        ("/metrics", "get"),
    ];
    for (path, method) in expected {
        let operation = paths.get(path).and_then(|p| p.get(method));
        assert!(operation.is_some(), "{method} {path} is missing from the OpenAPI document");
        // Every problem is declared as what it is served as.
        for (status, response) in operation.unwrap()["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(response["content"].get("application/problem+json").is_some() || path == "/healthz", "{method} {path} {status}: {response}");
            }
        }
    }
    let distinct_paths: std::collections::HashSet<_> = expected.iter().map(|(path, _)| path).collect();
    assert_eq!(paths.len(), distinct_paths.len(), "the document lists routes this test does not know: {:?}", paths.keys().collect::<Vec<_>>());
}
