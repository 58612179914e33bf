//! The benchmark's reference point, not part of the product: a bare axum server
//! that answers fixed paths with fixed bytes read from files at start-up. It shows
//! the ceiling the machine, the kernel and hyper allow, so that the storefront's
//! figures can be quoted as a ratio of it.
//!
//!   bench-reference <addr> <url-path>=<file> [<url-path>=<file> ...]

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or_else(|| anyhow::anyhow!("usage: bench-reference <addr> <path>=<file>..."))?;
    let mut router = Router::new();
    for mapping in args {
        let (path, file) = mapping.split_once('=').ok_or_else(|| anyhow::anyhow!("expected <path>=<file>, got {mapping}"))?;
        let body = bytes_of(file)?;
        let content_type = if file.ends_with(".json") { "application/json" } else { "text/html; charset=utf-8" };
        router = router.route(path, get(move || std::future::ready(([(header::CONTENT_TYPE, content_type)], body.clone()))));
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, router).await?;
    Ok(())
}

fn bytes_of(file: &str) -> anyhow::Result<axum::body::Bytes> {
    Ok(std::fs::read(file).map_err(|e| anyhow::anyhow!("reading {file}: {e}"))?.into())
}
