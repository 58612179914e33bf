//! The Ninefold server: configuration, the router (pages, `/api/v1`, `/healthz`),
//! background workers and graceful shutdown. `main.rs` only starts this.

// `Problem` (~176 bytes) is the API's error response; it only travels on the error
// path, where boxing it would cost more noise than it saves.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod archive_progress;
pub mod config;
pub mod guards;
pub mod images;
pub mod page_cache;
pub mod pages;
pub mod read_fence;
pub mod state;
pub mod telemetry;
pub mod workers;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use config::Settings;
use leptos::config::LeptosOptions;
use shop::Shop;
use state::AppState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Requests carry small JSON bodies and forms; anything bigger is refused early.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A built server, not yet listening.
pub struct Application {
    pub router: Router,
    pub shop: Shop,
}

impl Application {
    /// Opens and migrates the databases, seeds the demo catalog if asked and the
    /// database is empty, and builds the router.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // Install the metrics recorder before anything records, and the executor
        // before Leptos installs its own (a second application in one process, as
        // in tests, keeps the first's: the same kind).
        telemetry::metrics();
        let _ = any_spawner::Executor::init_custom_executor(read_fence::CarryingExecutor);
        let shop = Shop::open(&settings.databases, &settings.shop_settings()?).await?;
        if settings.seed_demo && shop::seed::seed_demo_if_empty(&shop).await.context("seeding the demo catalog")? {
            tracing::info!("demo catalog seeded; see README.md for the demo accounts");
        }
        let (api_router, openapi) = api::router().split_for_parts();
        let state = AppState {
            shop: shop.clone(),
            leptos_options: leptos_options(settings)?,
            cookies: web::CookiePolicy::new(settings.secure_cookies),
            openapi_json: serde_json::to_string(&api::document::complete(serde_json::to_value(&openapi).context("serialising the OpenAPI document")?))?.into(),
            metrics_token: settings.metrics_token.as_deref().map(Into::into),
        };
        let api_router = api_router.layer(axum::middleware::from_fn_with_state(state.clone(), api::idempotency::idempotent_posts));
        let router = Router::new()
            .merge(api_router)
            .route("/api/v1", axum::routing::any(api::problem::no_such_route))
            .route("/api/v1/{*rest}", axum::routing::any(api::problem::no_such_route))
            .merge(pages::router(&state))
            .route("/images/{*key}", axum::routing::get(images::serve))
            .route(
                "/seller/products/{id}/images",
                axum::routing::post(images::dashboard_upload).layer(DefaultBodyLimit::max(api::catalog::UPLOAD_BODY_LIMIT)),
            )
            // The dashboard's home is its orders list.
            .route("/seller", axum::routing::get(|| async { axum::response::Redirect::to("/seller/orders") }))
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn_with_state(state.clone(), read_fence::read_your_writes))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
            .layer(axum::middleware::from_fn_with_state(
                guards::Guards::new(&settings.rate_limits, settings.trust_forwarded_for, std::time::Duration::from_millis(settings.request_timeout_ms), settings.secure_cookies),
                guards::guard,
            ))
            .layer(telemetry::request_logging())
            .with_state(state);
        Ok(Self { router, shop })
    }

    /// Serves until `shutdown` fires, then lets in-flight requests finish.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
        let service = self.router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
    }
}

/// Leptos reads most options from variables cargo-leptos sets when it runs the
/// server; a release binary started by hand has none, so infer them from the build.
fn leptos_options(settings: &Settings) -> anyhow::Result<LeptosOptions> {
    let mut options = leptos::config::get_configuration(None).context("reading Leptos options")?.leptos_options;
    if options.output_name.is_empty() {
        options.output_name = "ninefold".into();
    }
    options.site_addr = settings.addr;
    // Live reload only exists under `cargo leptos watch`.
    if std::env::var_os("LEPTOS_ENV").is_none() {
        options.env = if std::env::var_os("LEPTOS_WATCH").is_some() { leptos::config::Env::DEV } else { leptos::config::Env::PROD };
    }
    // cargo-leptos writes the hashed asset names beside the binary when it hashes them.
    if std::env::var_os("LEPTOS_HASH_FILES").is_none() {
        let exe_dir = std::env::current_exe().ok().and_then(|exe| exe.parent().map(std::path::Path::to_path_buf));
        options.hash_files = exe_dir.is_some_and(|dir| dir.join(options.hash_file.as_ref()).exists());
    }
    Ok(options)
}

async fn method_not_allowed() -> api::problem::Problem {
    api::problem::Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this path does not accept that method")
}

/// A panic is a bug: log it and answer 500 rather than dropping the connection.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("unknown");
    tracing::error!(panic = message, "request handler panicked");
    api::problem::Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side; it has been logged").into_response()
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

/// Runs the whole server: listen, workers, graceful shutdown. On SIGTERM,
/// in-flight requests and workers get `shutdown_grace_secs` to finish, whatever
/// the databases do; past that the process stops anyway and exits non-zero.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(&settings).await?;
    let listener = TcpListener::bind(settings.addr).await.with_context(|| format!("binding {}", settings.addr))?;
    tracing::info!(addr = %settings.addr, "Ninefold is listening on http://{}", settings.addr);
    let shutdown = CancellationToken::new();
    let workers = workers::spawn_all(&app.shop, &settings, &shutdown);
    let shop = app.shop.clone();
    let mut serving = tokio::spawn(app.serve(listener, shutdown.clone()));
    tokio::select! {
        stopped = &mut serving => {
            shutdown.cancel();
            stopped.context("the server task failed")?.context("serving")?;
        }
        _ = shutdown_signal() => {
            tracing::info!(grace_secs = settings.shutdown_grace_secs, "shutting down: finishing in-flight requests and worker steps");
            shutdown.cancel();
        }
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(settings.shutdown_grace_secs);
    let mut cut_short = Vec::new();
    if !serving.is_finished() && tokio::time::timeout_at(deadline, &mut serving).await.is_err() {
        serving.abort();
        cut_short.push("in-flight requests");
    }
    for worker in workers {
        if tokio::time::timeout_at(deadline, worker).await.is_err() {
            cut_short.push("a worker");
        }
    }
    if tokio::time::timeout_at(deadline, shop.databases.close()).await.is_err() {
        cut_short.push("closing the database pools");
    }
    if !cut_short.is_empty() {
        anyhow::bail!("stopped after the {} s grace period, cutting short: {}", settings.shutdown_grace_secs, cut_short.join(", "));
    }
    tracing::info!("stopped");
    Ok(())
}

