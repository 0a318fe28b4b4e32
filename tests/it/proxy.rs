//! A fault-injecting HTTP proxy between the SDK and the emulator: it answers some requests itself with
//! throttling, a server error or a dropped connection, before they reach the emulator, and forwards the
//! rest. Faults are deterministic (the first attempt of each request, or every call of an API action), so
//! tests are repeatable whatever the concurrency.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 with the service's throttling code: retried by the SDK.
    Throttle,
    /// 503 Service Unavailable: retried by the SDK.
    Unavailable,
    /// The connection closes without an answer.
    Drop,
    /// The request is read and never answered: the connection stays open, silent, for a minute (a hung
    /// connection); only a timeout gets the caller out.
    Hang,
}

#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The first attempt of every distinct request (by body) gets the fault; its retry goes through. So
    /// every call fails once, whatever the concurrency, and the SDK's retries must carry the run.
    pub first_attempt: Option<Fault>,
    /// With `first_attempt`: so many more attempts of each distinct request get the fault too (0: only the
    /// first). A call with several failed attempts is what costs the SDK's retry quota for good.
    pub repeat: usize,
    /// Every request for these API actions gets the fault.
    pub always: Vec<(&'static str, Fault)>,
    /// Added to every request, like the round trip to a real region.
    pub latency: Option<std::time::Duration>,
}

pub struct Proxy {
    pub endpoint: String,
    pub injected: Arc<AtomicUsize>,
    seen: Arc<Mutex<HashMap<Vec<u8>, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: &str, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let injected = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let faults = Arc::new(faults);
        let (inj, seen_by_task) = (injected.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let (upstream, faults, seen, inj) = (upstream.clone(), faults.clone(), seen_by_task.clone(), inj.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &faults, &seen, &inj).await;
                });
            }
        });
        Proxy { endpoint, injected, seen, task }
    }

    /// Forgets the requests seen: with `first_attempt`, each gets its fault once more.
    pub fn forget_seen(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// Reads one request: head and body (by Content-Length).
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.trim().parse::<usize>().unwrap_or(0)))
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, body)))
}

fn action(body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or_default().to_string()
}

/// How a service words its errors.
#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Ec2,
    /// `<ErrorResponse>`: the query services, and Route 53.
    Query,
    /// S3's bare `<Error>`; it throttles with 503 SlowDown.
    S3,
}

fn fault_response(fault: Fault, dialect: Dialect) -> Vec<u8> {
    let (status, body) = match (fault, dialect) {
        (Fault::Throttle, Dialect::S3) => {
            ("503 Slow Down", "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault</RequestId></Error>")
        }
        (_, Dialect::S3) => {
            ("503 Service Unavailable", "<Error><Code>ServiceUnavailable</Code><Message>try again</Message><RequestId>fault</RequestId></Error>")
        }
        (Fault::Throttle, Dialect::Ec2) => (
            "400 Bad Request",
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>",
        ),
        (Fault::Throttle, Dialect::Query) => (
            "400 Bad Request",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault</RequestId></ErrorResponse>",
        ),
        (_, _) => ("503 Service Unavailable", "<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>try again</Message></Error></ErrorResponse>"),
    };
    format!("HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

async fn serve(mut client: TcpStream, upstream: &str, faults: &Faults, seen: &Mutex<HashMap<Vec<u8>, usize>>, injected: &AtomicUsize) -> std::io::Result<()> {
    // One request per connection: the answer says `Connection: close`, so the SDK opens a new one.
    let Some((head, body)) = read_request(&mut client).await? else { return Ok(()) };
    if let Some(latency) = faults.latency {
        tokio::time::sleep(latency).await;
    }
    let action = action(&body);
    // A request is its request line and body (REST services put the operation in the path).
    let request_line = head.lines().next().unwrap_or_default();
    let first = {
        let mut seen = seen.lock().unwrap();
        let attempts = seen.entry([request_line.as_bytes(), &body].concat()).or_insert(0);
        *attempts += 1;
        *attempts <= 1 + faults.repeat
    };
    let fault = faults.always.iter().find(|(a, _)| *a == action).map(|(_, f)| *f).or(faults.first_attempt.filter(|_| first));
    if let Some(fault) = fault {
        injected.fetch_add(1, Ordering::SeqCst);
        if fault == Fault::Hang {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return Ok(());
        }
        if fault != Fault::Drop {
            let dialect = if String::from_utf8_lossy(&body).contains("Version=2016-11-15") {
                Dialect::Ec2
            } else if head.to_ascii_lowercase().contains("x-amz-content-sha256") {
                Dialect::S3
            } else {
                Dialect::Query
            };
            client.write_all(&fault_response(fault, dialect)).await?;
        }
        return client.shutdown().await;
    }
    let mut up = TcpStream::connect(upstream).await?;
    let head: String =
        head.split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect::<Vec<_>>().join("\r\n").trim_end().to_string();
    up.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    up.write_all(&body).await?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await?;
    client.write_all(&response).await?;
    client.shutdown().await
}
