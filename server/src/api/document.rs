//! Completes the OpenAPI document utoipa builds from the routes, in one place
//! rather than on every handler: every error is `application/problem+json`, and
//! every operation declares the problem responses the server can give it whatever
//! the handler does (bad JSON, an unsupported body, a cross-site write, a rate
//! limit, an outage), so clients and the fuzzer know every status they can get.

use serde_json::{Value, json};

const PROBLEM: &str = "#/components/schemas/Problem";

/// Characters no short text field takes: controls and the spoofing characters
/// (`shop::domain::is_spoofing`), as a regular-expression class body.
const REFUSED: &str = r"\x00-\x1F\x7F-\x9F\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF";
/// As [`REFUSED`], for text that may hold newlines and tabs.
const REFUSED_MULTILINE: &str = r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF";

/// Text on one line with no surrounding spaces (the server trims), nothing refused.
fn one_line(min: u64, max: u64) -> Value {
    let body = format!("[^\\s{REFUSED}]([^{REFUSED}]*[^\\s{REFUSED}])?");
    let pattern = if min == 0 { format!("^({body})?$") } else { format!("^{body}$") };
    json!({"minLength": min, "maxLength": max, "pattern": pattern})
}

fn multiline(max: u64) -> Value {
    json!({"maxLength": max, "pattern": format!("^([^\\s{REFUSED_MULTILINE}]([^{REFUSED_MULTILINE}]*[^\\s{REFUSED_MULTILINE}])?)?$")})
}

fn email() -> Value {
    let c = format!("[^@\\s{REFUSED}]");
    let d = format!("[^@.\\s{REFUSED}]");
    json!({"minLength": 3, "maxLength": 254, "pattern": format!("^{c}+@{d}{c}*\\.{c}*{d}$")})
}

fn range(min: i64, max: i64) -> Value {
    json!({"minimum": min, "maximum": max})
}

fn pattern(pattern: &str) -> Value {
    json!({"pattern": pattern})
}

const ORDER_ID: &str = "^[1-8][0-9]{18}$";
/// The largest integer every JSON reader holds exactly (2^53 - 1).
const SAFE_MAX: i64 = 9_007_199_254_740_991;
const TOKEN: &str = "^[0-9a-f]{64}$";
const STATUSES: [&str; 5] = ["pending_payment", "paid", "shipped", "completed", "cancelled"];

/// The rules each request field is checked against, so generated clients (and
/// the fuzzer) know what the server accepts: (schema, property, constraints).
fn field_rules() -> Vec<(&'static str, &'static str, Value)> {
    let quantity = range(1, shop::cart::MAX_LINE_QUANTITY);
    vec![
        ("RegisterRequest", "email", email()),
        ("RegisterRequest", "password", json!({"minLength": 8, "maxLength": 128})),
        ("RegisterRequest", "name", one_line(1, 100)),
        ("RegisterRequest", "role", json!({"enum": ["buyer", "seller", null]})),
        ("LoginRequest", "email", email()),
        ("LoginRequest", "password", json!({"minLength": 1, "maxLength": 128})),
        ("ChangePasswordRequest", "current_password", json!({"minLength": 1, "maxLength": 128})),
        ("ChangePasswordRequest", "new_password", json!({"minLength": 8, "maxLength": 128})),
        ("SetLineRequest", "quantity", range(0, shop::cart::MAX_LINE_QUANTITY)),
        ("MergeLine", "product_id", range(1, SAFE_MAX)),
        ("MergeLine", "quantity", range(0, shop::cart::MAX_LINE_QUANTITY)),
        ("MergeLine", "added_at", json!({"format": "date-time"})),
        ("MergeRequest", "merge_id", pattern("^[!-~]{1,100}$")),
        ("MergeRequest", "lines", json!({"maxItems": shop::cart::MAX_LINES})),
        ("MergeRequest", "cart_token", pattern(TOKEN)),
        ("CreateProductRequest", "title", one_line(1, 200)),
        ("CreateProductRequest", "description", multiline(5000)),
        ("CreateProductRequest", "price_cents", range(1, shop::domain::Money::MAX_CENTS)),
        ("CreateProductRequest", "stock", range(0, shop::domain::StockLevel::MAX)),
        ("CreateProductRequest", "inventory_mode", json!({"enum": ["on_order", "on_payment", "reserve", null]})),
        ("CreateProductRequest", "categories", categories()),
        ("EditProductRequest", "expected_version", range(1, SAFE_MAX)),
        ("EditProductRequest", "title", one_line(1, 200)),
        ("EditProductRequest", "description", multiline(5000)),
        ("EditProductRequest", "price_cents", range(1, shop::domain::Money::MAX_CENTS)),
        ("EditProductRequest", "inventory_mode", json!({"enum": ["on_order", "on_payment", "reserve", null]})),
        ("EditProductRequest", "categories", categories()),
        ("RestockRequest", "quantity", range(1, shop::domain::Quantity::MAX)),
        ("LineBody", "product_id", range(1, SAFE_MAX)),
        ("LineBody", "quantity", quantity.clone()),
        ("LineRequest", "product_id", range(1, SAFE_MAX)),
        ("LineRequest", "quantity", quantity),
        ("CheckoutRequest", "lines", json!({"minItems": 1, "maxItems": shop::orders::MAX_ORDER_LINES})),
        ("PlaceOrderRequest", "order_id", pattern(ORDER_ID)),
        ("PlaceOrderRequest", "checkout_token", pattern(TOKEN)),
        ("PlaceOrderRequest", "lines", json!({"minItems": 1, "maxItems": shop::orders::MAX_ORDER_LINES})),
        ("PlaceOrderRequest", "expected_total_cents", range(0, SAFE_MAX)),
        ("ShippingAddress", "name", one_line(1, 100)),
        ("ShippingAddress", "line1", one_line(1, 200)),
        ("ShippingAddress", "line2", one_line(0, 200)),
        ("ShippingAddress", "city", one_line(1, 100)),
        ("ShippingAddress", "postal_code", one_line(1, 20)),
        ("ShippingAddress", "country", one_line(2, 60)),
        ("ShippingRequest", "carrier", one_line(1, 60)),
        ("ShippingRequest", "tracking_number", one_line(1, 60)),
        ("ShippingRequest", "expected_version", range(0, SAFE_MAX)),
        ("TopUpRequest", "amount_cents", range(1, shop::domain::Money::MAX_TOP_UP_CENTS)),
    ]
}

/// A product's category slugs: a few, each a slug (unknown ones are 422).
fn categories() -> Value {
    json!({"maxItems": shop::services::catalog::MAX_CATEGORIES, "items": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"}})
}

/// The rules of path, query and header parameters, by name (and, for a cursor,
/// by the list it pages).
fn parameter_rule(path: &str, name: &str, schema: &Value) -> Option<Value> {
    let integer = schema.get("type").is_some_and(|t| t == "integer" || t.as_array().is_some_and(|a| a.contains(&json!("integer"))));
    Some(match name {
        "id" | "product_id" if integer => range(1, SAFE_MAX),
        "id" => pattern(ORDER_ID),
        "digest" => pattern("^[0-9a-f]{32}$"),
        // Empty is no cart.
        "X-Cart-Token" => pattern("^([0-9a-f]{64})?$"),
        "Idempotency-Key" => pattern("^[!-~]{1,128}$"),
        "limit" => range(1, i64::from(shop::catalog::PageLimit::MAX)),
        // Empty is no filter.
        "status" => json!({"enum": STATUSES.iter().chain(&[""]).map(|s| json!(s)).chain([Value::Null]).collect::<Vec<_>>()}),
        // An empty cursor is the first page.
        "cursor" if path.ends_with("/products") => pattern("^(p[1-9a-f][0-9a-f]{0,14}|c[0-9a-f]{1,16}\\.[1-9a-f][0-9a-f]{0,14}|r[0-9a-f]{1,16}\\.[1-9a-f][0-9a-f]{0,14})?$"),
        "q" => json!({"maxLength": shop::search::SearchTerms::MAX_CHARS}),
        // Empty is no filter.
        "category" => pattern("^([a-z0-9-]{1,40})?$"),
        "seller_id" => range(1, SAFE_MAX),
        "min_price_cents" | "max_price_cents" => range(0, shop::domain::Money::MAX_CENTS),
        "sort" => json!({"enum": ["newest", "price_asc", "price_desc", "relevance", "", null]}),
        "cursor" if path.ends_with("/wallet") => pattern("^([0-9]{1,15}\\.[!-~]{1,200})?$"),
        "cursor" => pattern("^([1-8][0-9]{18})?$"),
        _ => return None,
    })
}

fn merge(schema: &mut Value, rule: Value) {
    if let (Some(schema), Value::Object(rule)) = (schema.as_object_mut(), rule) {
        schema.extend(rule);
    }
}

/// The document as JSON, completed.
pub fn complete(mut document: Value) -> Value {
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, operation) in item.iter_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    complete_operation(path, method, operation);
                    constrain_parameters(path, operation);
                }
            }
        }
    }
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (schema, property, rule) in field_rules() {
            if let Some(target) = schemas.get_mut(schema).and_then(|s| s.pointer_mut(&format!("/properties/{property}"))) {
                merge(target, rule);
            }
        }
    }
    document
}

fn constrain_parameters(path: &str, operation: &mut serde_json::Map<String, Value>) {
    let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else { return };
    for parameter in parameters {
        let name = parameter.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let header = parameter.get("in").and_then(Value::as_str) == Some("header");
        let Some(schema) = parameter.get_mut("schema") else { continue };
        // An optional header is absent or a string: a header cannot carry JSON's `null`.
        if header && schema.get("type").is_some_and(Value::is_array) {
            schema["type"] = json!("string");
        }
        if let Some(rule) = parameter_rule(path, &name, schema) {
            merge(schema, rule);
        }
    }
}

fn complete_operation(path: &str, method: &str, operation: &mut serde_json::Map<String, Value>) {
    let writes = matches!(method, "post" | "put" | "patch" | "delete");
    let secured = operation.get("security").and_then(Value::as_array).is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
    let has_body = operation.contains_key("requestBody");
    let has_params = operation.get("parameters").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
    let has_path_params = path.contains('{');
    let api = path.starts_with("/api/v1");
    let responses = operation.entry("responses").or_insert_with(|| json!({})).as_object_mut().expect("responses is an object");
    for response in responses.values_mut() {
        as_problem_json(response);
    }
    let mut declare = |status: &str, description: &str| {
        responses.entry(status.to_owned()).or_insert_with(|| problem_response(description));
    };
    if !api {
        declare("503", "the server is overloaded or past the request's deadline, with Retry-After");
        return;
    }
    declare("503", "database_unavailable, overloaded or request_timeout: try again after Retry-After");
    if has_body {
        declare("400", "malformed_json: the body is not JSON");
        declare("413", "body_too_large");
        declare("415", "unsupported_media_type: send Content-Type: application/json");
        declare("422", "a field broke a rule; `field` names it");
    }
    if has_params {
        declare("400", "invalid_query: a query parameter could not be read");
        declare("422", "a parameter broke a rule; `field` names it");
    }
    if has_path_params {
        declare("404", "not_found: nothing of the caller's has that id");
    }
    if secured {
        declare("401", "unauthenticated or invalid_token");
        declare("403", "forbidden: the caller's role may not do this");
    }
    if writes {
        declare("403", "cross_site_request: a cookie-authenticated write from another site");
        declare("429", "rate_limited (per client address), with Retry-After");
        if method == "post" {
            declare("400", "invalid_idempotency_key");
            declare("409", "idempotency_key_in_use: the first request with this Idempotency-Key is still running");
            declare("422", "idempotency_key_reused: the Idempotency-Key was used for another request");
        }
    }
}

/// A response whose body is a `Problem` is served as `application/problem+json`.
fn as_problem_json(response: &mut Value) {
    let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else { return };
    let is_problem = content.get("application/json").and_then(|c| c.pointer("/schema/$ref")).and_then(Value::as_str) == Some(PROBLEM);
    if is_problem && let Some(media) = content.remove("application/json") {
        content.insert("application/problem+json".to_owned(), media);
    }
}

fn problem_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": PROBLEM}}}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_problem_json_and_common_answers_are_declared() {
        let document = json!({"paths": {"/api/v1/orders/{id}/pay": {"post": {
            "security": [{"bearer": []}],
            "requestBody": {},
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}}},
                          "402": {"description": "x", "content": {"application/json": {"schema": {"$ref": PROBLEM}}}}}
        }}}});
        let done = complete(document);
        let responses = &done["paths"]["/api/v1/orders/{id}/pay"]["post"]["responses"];
        assert!(responses["200"]["content"]["application/json"].is_object());
        assert!(responses["402"]["content"]["application/problem+json"].is_object());
        for status in ["400", "401", "403", "404", "409", "413", "415", "422", "429", "503"] {
            assert!(responses[status]["content"]["application/problem+json"].is_object(), "{status}");
        }
    }
}
