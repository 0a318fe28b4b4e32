//! Webhooks: one JSON POST to a Slack-compatible incoming webhook (`{"text": ...}`), over HTTP or HTTPS
//! with the system's roots. With the sheet's DNS lookups (`resolve`), the only network calls converge makes
//! that are not to AWS.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("webhook {url}: {message}")]
    Failed { url: String, message: String },
}

/// Posts `{"text": text}` to `url`; fails on a non-2xx answer, naming the status and the start of the body.
pub async fn post_text(url: &str, text: &str) -> Result<(), NotifyError> {
    let fail = |message: String| NotifyError::Failed { url: url.to_string(), message };
    let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("not a URL: {e}")))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| fail(format!("no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let body = serde_json::json!({ "text": text }).to_string();
    let request = hyper::Request::post(uri)
        .header("content-type", "application/json")
        .header("user-agent", concat!("converge/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| fail(e.to_string()))?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| fail("no answer within 10s".into()))?
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let body = String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
        return Err(fail(format!("answered {status}: {body}")));
    }
    Ok(())
}
