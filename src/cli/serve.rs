//! `reconcile --listen ADDR`: `/metrics` (the loop's metrics, OpenMetrics text), `/healthz` (the process
//! answers) and `/readyz` (a pass ended within two intervals), over hyper's HTTP/1 server.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::reconcile::metrics::{CONTENT_TYPE, Metrics};

/// Binds `addr` now (a port taken is an error before the loop starts) and serves until the process ends.
pub(super) async fn serve(addr: &str, metrics: Arc<Metrics>, interval: Duration) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(answer(req.uri().path(), &metrics, interval)) }
                });
                // A client that goes away mid-request is no concern of the loop's.
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(bound)
}

fn answer(path: &str, metrics: &Metrics, interval: Duration) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/metrics" => (StatusCode::OK, CONTENT_TYPE, metrics.encode()),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" if metrics.ready(Instant::now(), interval) => (StatusCode::OK, "text/plain", "ready\n".to_string()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "no pass has ended within two intervals\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found: /metrics, /healthz, /readyz\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}
