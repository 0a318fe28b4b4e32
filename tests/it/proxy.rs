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
    /// Every so many requests (1 in 5: 20% throttling) is answered with throttling, whatever it is.
    pub throttle_every: Option<usize>,
    /// Every so many writes reaches the emulator, which does it, and its answer is lost (the connection
    /// closes): the caller cannot know the write happened.
    pub lose_every_write: Option<usize>,
    /// The write with this number (from 1) reaches the emulator, which does it; then the proxy says so on
    /// [`Proxy::held`] and never answers: the moment to kill the caller.
    pub hold_write: Option<usize>,
    /// Likewise for the first write whose method and path (without a query or a trailing `/`) are these:
    /// `PUT /bucket` is a CreateBucket.
    pub hold_request: Option<&'static str>,
    /// AWS's own throttling, for one API: requests whose body contains the marker (`Version=2012-06-01`:
    /// classic ELB) take a token from a bucket of this burst, refilled at this rate per second, and are
    /// throttled when it is empty.
    pub limit: Option<(&'static str, u32, f64)>,
    /// The answer to the first request of this API action is lost after the emulator did it.
    pub lose_first: Option<&'static str>,
}

pub struct Proxy {
    pub endpoint: String,
    pub injected: Arc<AtomicUsize>,
    /// Writes seen (requests that are not a Describe, List or Get), and of them those whose answer was lost.
    pub writes: Arc<AtomicUsize>,
    pub lost: Arc<AtomicUsize>,
    /// Notified once the write `hold_write` names has been done.
    pub held: Arc<tokio::sync::Notify>,
    /// Every request in the order it arrived: the query services' action, or a REST request's method and
    /// path (`POST /2013-04-01/hostedzone/Z1/rrset`).
    pub calls: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<HashMap<Vec<u8>, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the proxy counts, shared by its connections.
struct Counters {
    injected: Arc<AtomicUsize>,
    requests: AtomicUsize,
    writes: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
    held: Arc<tokio::sync::Notify>,
    held_once: AtomicUsize,
    lost_first: AtomicUsize,
    calls: Arc<Mutex<Vec<String>>>,
    /// The emulated limit's bucket: tokens, and when they were counted.
    bucket: Mutex<Option<(f64, std::time::Instant)>>,
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
        let counters = Arc::new(Counters {
            injected: Arc::default(),
            requests: AtomicUsize::new(0),
            writes: Arc::default(),
            lost: Arc::default(),
            held: Arc::default(),
            held_once: AtomicUsize::new(0),
            lost_first: AtomicUsize::new(0),
            calls: Arc::default(),
            bucket: Mutex::new(None),
        });
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let faults = Arc::new(faults);
        let (counted, seen_by_task) = (counters.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let (upstream, faults, seen, counters) = (upstream.clone(), faults.clone(), seen_by_task.clone(), counted.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &faults, &seen, &counters).await;
                });
            }
        });
        let Counters { injected, writes, lost, held, calls, .. } = &*counters;
        Proxy { endpoint, injected: injected.clone(), writes: writes.clone(), lost: lost.clone(), held: held.clone(), calls: calls.clone(), seen, task }
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
    /// The JSON services (`X-Amz-Target`: the Resource Groups Tagging API): `{"__type": ...}`.
    Json,
}

fn fault_response(fault: Fault, dialect: Dialect) -> Vec<u8> {
    if dialect == Dialect::Json {
        let (status, body) = match fault {
            Fault::Throttle => ("400 Bad Request", r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
            _ => ("503 Service Unavailable", r#"{"__type":"ServiceUnavailable","message":"try again"}"#),
        };
        return format!("HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            .into_bytes();
    }
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

/// Whether a request changes something: the query services' actions other than Describe, List and Get, and
/// the REST services' (S3, Route 53) methods other than GET and HEAD.
fn is_write(head: &str, action: &str) -> bool {
    if !action.is_empty() {
        return !["Describe", "List", "Get"].iter().any(|p| action.starts_with(p));
    }
    !(head.starts_with("GET ") || head.starts_with("HEAD "))
}

async fn serve(mut client: TcpStream, upstream: &str, faults: &Faults, seen: &Mutex<HashMap<Vec<u8>, usize>>, counters: &Counters) -> std::io::Result<()> {
    let injected = &counters.injected;
    // One request per connection: the answer says `Connection: close`, so the SDK opens a new one.
    let Some((head, body)) = read_request(&mut client).await? else { return Ok(()) };
    if let Some(latency) = faults.latency {
        tokio::time::sleep(latency).await;
    }
    let action = action(&body);
    // A request is its request line and body (REST services put the operation in the path).
    let request_line = head.lines().next().unwrap_or_default();
    let call = if action.is_empty() { request_line.rsplit_once(' ').map_or(request_line, |(r, _)| r).to_string() } else { action.clone() };
    counters.calls.lock().unwrap().push(call);
    let first = {
        let mut seen = seen.lock().unwrap();
        let attempts = seen.entry([request_line.as_bytes(), &body].concat()).or_insert(0);
        *attempts += 1;
        *attempts <= 1 + faults.repeat
    };
    let nth = counters.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let throttled = faults.throttle_every.is_some_and(|every| nth.is_multiple_of(every));
    let fault = faults.always.iter().find(|(a, _)| *a == action).map(|(_, f)| *f).or(faults.first_attempt.filter(|_| first));
    let fault = fault.or(throttled.then_some(Fault::Throttle));
    let over_limit = faults.limit.is_some_and(|(marker, burst, per_second)| {
        if !String::from_utf8_lossy(&body).contains(marker) {
            return false;
        }
        let now = std::time::Instant::now();
        let mut bucket = counters.bucket.lock().unwrap();
        let (tokens, at) = bucket.get_or_insert((f64::from(burst), now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(f64::from(burst));
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            false
        } else {
            true
        }
    });
    let fault = fault.or(over_limit.then_some(Fault::Throttle));
    if let Some(fault) = fault {
        injected.fetch_add(1, Ordering::SeqCst);
        if fault == Fault::Hang {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return Ok(());
        }
        if fault != Fault::Drop {
            let dialect = if String::from_utf8_lossy(&body).contains("Version=2016-11-15") {
                Dialect::Ec2
            } else if head.to_ascii_lowercase().contains("x-amz-target") {
                Dialect::Json
            } else if head.to_ascii_lowercase().contains("x-amz-content-sha256") {
                Dialect::S3
            } else {
                Dialect::Query
            };
            client.write_all(&fault_response(fault, dialect)).await?;
        }
        return client.shutdown().await;
    }
    let write = if is_write(&head, &action) { counters.writes.fetch_add(1, Ordering::SeqCst) + 1 } else { 0 };
    let mut up = TcpStream::connect(upstream).await?;
    let head: String =
        head.split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect::<Vec<_>>().join("\r\n").trim_end().to_string();
    up.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    up.write_all(&body).await?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await?;
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let target = format!("{method} {}", path.trim_end_matches('/'));
    let hold = faults.hold_write == Some(write) || faults.hold_request.is_some_and(|r| target == r && counters.held_once.fetch_add(1, Ordering::SeqCst) == 0);
    if write > 0 && hold {
        // Done in the emulator; the caller never hears of it.
        counters.held.notify_one();
        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        return Ok(());
    }
    let lose_this = faults.lose_first == Some(action.as_str()) && counters.lost_first.fetch_add(1, Ordering::SeqCst) == 0;
    if write > 0 && (lose_this || faults.lose_every_write.is_some_and(|every| write.is_multiple_of(every))) {
        counters.lost.fetch_add(1, Ordering::SeqCst);
        return client.shutdown().await;
    }
    client.write_all(&response).await?;
    client.shutdown().await
}
