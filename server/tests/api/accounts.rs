use crate::helpers::TestApp;
use futures::future::join_all;
use serde_json::json;

crate::on_both_backends!(
    a_buyer_registers_signs_in_sees_themself_and_signs_out,
    the_sign_in_cookie_is_http_only_same_site_lax_and_works,
    a_taken_email_is_refused_whatever_its_case,
    wrong_passwords_and_unknown_emails_get_401,
    repeated_failed_sign_ins_are_slowed_down,
    invalid_registrations_are_refused_and_create_nothing,
    expired_and_garbage_tokens_get_401,
    concurrent_registrations_of_one_email_create_one_account,
    guessing_from_one_address_never_locks_the_owner_out_elsewhere,
    unknown_emails_are_throttled_exactly_like_known_ones,
    failed_sign_ins_are_forgiven_with_time,
    a_herd_of_uncached_sessions_is_looked_up_in_a_few_statements_each_its_own,
);

/// A client whose requests come from another loopback address than the default.
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(address)).build().unwrap()
}

async fn sign_in_from(app: &TestApp, client: &reqwest::Client, email: &str, password: &str) -> crate::helpers::Reply {
    let request = client.post(app.url("/api/v1/auth/login")).json(&json!({"email": email, "password": password}));
    crate::helpers::Reply::read(request.send().await.unwrap()).await
}

/// Lockout is no weapon: an attacker blocked at an email from one address leaves
/// its owner, signing in from another, untouched.
async fn guessing_from_one_address_never_locks_the_owner_out_elsewhere(app: TestApp) {
    app.register("victim@example.com", "buyer").await;
    let attacker = client_from([127, 0, 0, 1]);
    for _ in 0..shop::services::sign_in_throttle::FREE_FAILURES + 1 {
        sign_in_from(&app, &attacker, "victim@example.com", "guess guess").await.assert_problem(401, "invalid_credentials");
    }
    sign_in_from(&app, &attacker, "victim@example.com", "guess guess").await.assert_problem(429, "too_many_attempts");
    let owner = client_from([127, 0, 0, 2]);
    assert_eq!(sign_in_from(&app, &owner, "victim@example.com", "correct horse").await.status, 200);
}

/// Lockout is no oracle: an email without an account answers exactly as one with
/// an account does, failure after failure.
async fn unknown_emails_are_throttled_exactly_like_known_ones(app: TestApp) {
    app.register("known@example.com", "buyer").await;
    let client = client_from([127, 0, 0, 3]);
    for _ in 0..shop::services::sign_in_throttle::FREE_FAILURES + 2 {
        let known = sign_in_from(&app, &client, "known@example.com", "guess guess").await;
        let unknown = sign_in_from(&app, &client, "unknown@example.com", "guess guess").await;
        assert_eq!((known.status, &known.body["code"], &known.body["detail"]), (unknown.status, &unknown.body["code"], &unknown.body["detail"]));
        assert_eq!(known.headers.get("retry-after"), unknown.headers.get("retry-after"));
    }
}

/// Failures decay: once time has passed without more, the next wrong password is
/// an ordinary 401 again, not a block.
async fn failed_sign_ins_are_forgiven_with_time(app: TestApp) {
    app.register("slow@example.com", "buyer").await;
    for _ in 0..shop::services::sign_in_throttle::FREE_FAILURES + 1 {
        app.post("/api/v1/auth/login", None, &json!({"email": "slow@example.com", "password": "guess guess"})).await;
    }
    app.post("/api/v1/auth/login", None, &json!({"email": "slow@example.com", "password": "guess guess"})).await.assert_problem(429, "too_many_attempts");
    let later = 10 * shop::services::sign_in_throttle::DECAY_MS;
    sqlx::query("UPDATE sign_in_throttle SET last_failure_ms = last_failure_ms - $1, blocked_until_ms = 0").bind(later).execute(app.shop.databases.main.pool()).await.unwrap();
    app.post("/api/v1/auth/login", None, &json!({"email": "slow@example.com", "password": "guess guess"})).await.assert_problem(401, "invalid_credentials");
    app.post("/api/v1/auth/login", None, &json!({"email": "slow@example.com", "password": "guess guess"})).await.assert_problem(401, "invalid_credentials");
}

async fn a_buyer_registers_signs_in_sees_themself_and_signs_out(app: TestApp) {
    let user = app.register("ann@example.com", "buyer").await;
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["role"], "buyer");
    assert_eq!(user["name"], "Test Person");
    assert!(user["id"].as_i64().unwrap() > 0);

    let token = app.login("ann@example.com").await;
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"], user);

    let out = app.post("/api/v1/auth/logout", Some(&token), &json!({})).await;
    assert_eq!(out.status, 204);
    app.get("/api/v1/me", Some(&token)).await.assert_problem(401, "invalid_token");
}

async fn the_sign_in_cookie_is_http_only_same_site_lax_and_works(app: TestApp) {
    app.register("cookie@example.com", "buyer").await;
    let reply = app.post("/api/v1/auth/login", None, &json!({"email": "cookie@example.com", "password": "correct horse"})).await;
    let cookie = reply.headers.get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    assert!(cookie.starts_with("nf_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");

    let pair = cookie.split(';').next().unwrap();
    let me = app.client.get(app.url("/api/v1/me")).header("cookie", pair).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let out = app.client.post(app.url("/api/v1/auth/logout")).header("cookie", pair).header("origin", app.base.clone()).send().await.unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let me = app.client.get(app.url("/api/v1/me")).header("cookie", pair).send().await.unwrap();
    assert_eq!(me.status(), 401);
}

async fn a_taken_email_is_refused_whatever_its_case(app: TestApp) {
    app.register("bob@example.com", "seller").await;
    let again = app.post("/api/v1/auth/register", None, &json!({"email": "BOB@Example.com", "password": "another pass", "name": "Bob", "role": "buyer"})).await;
    again.assert_problem(409, "email_taken");
    assert_eq!(app.count("users").await, 1);
}

async fn wrong_passwords_and_unknown_emails_get_401(app: TestApp) {
    app.register("cat@example.com", "buyer").await;
    let wrong = app.post("/api/v1/auth/login", None, &json!({"email": "cat@example.com", "password": "not the password"})).await;
    wrong.assert_problem(401, "invalid_credentials");
    assert!(wrong.headers.get("set-cookie").is_none());
    let unknown = app.post("/api/v1/auth/login", None, &json!({"email": "nobody@example.com", "password": "correct horse"})).await;
    unknown.assert_problem(401, "invalid_credentials");
    // Both say the same thing: no hint which emails have accounts.
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
}

async fn repeated_failed_sign_ins_are_slowed_down(app: TestApp) {
    app.register("dan@example.com", "buyer").await;
    let app = &app;
    let attempt = |password: &'static str| async move { app.post("/api/v1/auth/login", None, &json!({"email": "dan@example.com", "password": password})).await };
    for _ in 0..shop::services::sign_in_throttle::FREE_FAILURES + 1 {
        attempt("guess guess").await.assert_problem(401, "invalid_credentials");
    }
    let blocked = attempt("guess again").await;
    blocked.assert_problem(429, "too_many_attempts");
    let retry_after: u64 = blocked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "retry after {retry_after}");
    // While blocked, even the right password is not checked.
    attempt("correct horse").await.assert_problem(429, "too_many_attempts");
    // Once the wait is over, the right password works and clears the count.
    tokio::time::sleep(std::time::Duration::from_millis(retry_after * 1000 + 100)).await;
    assert_eq!(attempt("correct horse").await.status, 200);
    attempt("guess guess").await.assert_problem(401, "invalid_credentials");
}

async fn invalid_registrations_are_refused_and_create_nothing(app: TestApp) {
    let cases = [
        (json!({"email": "not-an-email", "password": "correct horse", "name": "A"}), "email"),
        (json!({"email": "a@example.com", "password": "short", "name": "A"}), "password"),
        (json!({"email": "a@example.com", "password": "x".repeat(129), "name": "A"}), "password"),
        (json!({"email": "a@example.com", "password": "correct horse", "name": "   "}), "name"),
        (json!({"email": "a@example.com", "password": "correct horse", "name": "A", "role": "admin"}), "role"),
        (json!({"email": "a@example.com", "password": "correct horse", "name": "A", "role": "wizard"}), "role"),
        (json!({"email": 42, "password": "correct horse", "name": "A"}), "email"),
        (json!({"password": "correct horse", "name": "A"}), "email"),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/v1/auth/register", None, &body).await;
        let problem = reply.assert_problem(422, reply.body["code"].as_str().unwrap_or("?"));
        assert_eq!(problem["field"], field, "for {body}");
    }
    assert_eq!(app.count("users").await, 0);
}

async fn expired_and_garbage_tokens_get_401(app: TestApp) {
    app.register("eve@example.com", "buyer").await;
    let token = app.login("eve@example.com").await;
    let session = shop::services::accounts::SessionToken::parse(&token).unwrap();
    app.shop.accounts.expire_session(&session).await.unwrap();
    app.get("/api/v1/me", Some(&token)).await.assert_problem(401, "invalid_token");

    for garbage in ["garbage", "' OR 1=1 --", &"0".repeat(64)] {
        app.get("/api/v1/me", Some(garbage)).await.assert_problem(401, "invalid_token");
        let with_cookie = app.client.get(app.url("/api/v1/me")).header("cookie", format!("nf_session={garbage}")).send().await.unwrap();
        assert_eq!(with_cookie.status(), 401);
    }
    let scheme = app.client.get(app.url("/api/v1/me")).header("authorization", "Basic dXNlcjpwYXNz").send().await.unwrap();
    assert_eq!(scheme.status(), 401);
    app.get("/api/v1/me", None).await.assert_problem(401, "unauthenticated");
    // A garbage cookie does not stop anyone browsing.
    let browse = app.client.get(app.url("/api/v1/products")).header("cookie", "nf_session=%%%; other=1").send().await.unwrap();
    assert_eq!(browse.status(), 200);
}

async fn concurrent_registrations_of_one_email_create_one_account(app: TestApp) {
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move { app.post("/api/v1/auth/register", None, &json!({"email": "race@example.com", "password": "correct horse", "name": format!("Racer {i}")})).await }
    });
    let replies = join_all(attempts).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let taken = replies.iter().filter(|r| r.status == 409 && r.body["code"] == "email_taken").count();
    assert_eq!((created, taken), (1, 19), "{:?}", replies.iter().map(|r| &r.text).collect::<Vec<_>>());
    assert_eq!(app.count("users").await, 1);
}

/// A sale opens with every buyer's first request at once, none of their sessions
/// cached: the lookups share statements (issue 14), and each still gets its own
/// user (however many ask for one session), or none for a token that is garbage,
/// ended or idle too long; last uses that are due are written, the others are not.
async fn a_herd_of_uncached_sessions_is_looked_up_in_a_few_statements_each_its_own(app: TestApp) {
    use shop::services::accounts::SessionToken;
    const USERS: usize = 4;
    const SESSIONS_EACH: usize = 10;
    let mut sessions = Vec::new();
    for u in 0..USERS {
        let email = format!("herd-{u}@example.com");
        let id = app.register(&email, "buyer").await["id"].as_i64().unwrap();
        for _ in 0..SESSIONS_EACH {
            sessions.push((app.login(&email).await, id));
        }
    }
    let main = &app.shop.databases.main;
    // One session was last used long ago (due a write), one is past the idle timeout.
    let stale = sessions[3].0.clone();
    let idle = sessions[7].0.clone();
    let an_hour_ago = shop::clock::now_ms() - 60 * 60 * 1000;
    let a_month_ago = shop::clock::now_ms() - 30 * 24 * 60 * 60 * 1000;
    for (token, at) in [(&stale, an_hour_ago), (&idle, a_month_ago)] {
        sqlx::query("UPDATE sessions SET last_seen_at_ms = $1 WHERE token_sha256 = $2").bind(at).bind(sha256_hex(token)).execute(main.pool()).await.unwrap();
    }
    let garbage = SessionToken::generate().unwrap().expose().to_owned();

    let mut asked: Vec<(String, Option<i64>)> = sessions.iter().map(|(token, id)| (token.clone(), Some(*id))).collect();
    asked[7].1 = None;
    asked.push((garbage, None));
    // A client's parallel requests ask for one session several times at once.
    asked.extend(asked[..5].to_vec());
    let used_before = main.uses();
    let answers = join_all(asked.iter().map(|(token, _)| {
        let token = SessionToken::parse(token).unwrap();
        let accounts = app.shop.accounts.clone();
        tokio::spawn(async move { accounts.user_for_token(&token).await.unwrap().map(|user| user.id.get()) })
    }))
    .await;
    let used = main.uses() - used_before;
    for ((token, expected), answer) in asked.iter().zip(answers) {
        assert_eq!(answer.unwrap(), *expected, "the session {token} answers for its own user, or no one");
    }
    // One statement each would be 46; batched, a lookup alone, then one or two
    // batches with the stale session's write.
    assert!(used <= 8, "{used} statements on main for {} lookups", asked.len());
    let last_seen = |token: String| async move {
        sqlx::query_scalar::<_, i64>("SELECT last_seen_at_ms FROM sessions WHERE token_sha256 = $1").bind(sha256_hex(&token)).fetch_one(main.pool()).await.unwrap()
    };
    assert!(last_seen(stale).await > an_hour_ago, "a due last use is written");
    assert_eq!(last_seen(idle).await, a_month_ago, "an idle session is not revived");
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}
