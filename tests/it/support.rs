//! Test support: a private emulator per test, fleets written to temporary folders, the binary and the
//! library pointed at the emulator, and an independent SDK client to check and tamper with AWS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use converge::apply::{self, Report};
use converge::aws::{Aws, AwsExecutor};
use converge::model::{self, Fleet};
use converge::plan::PlanOptions;
use converge::planner::{self, Planned};

pub const REGION: &str = "eu-west-1";
/// One of the images moto knows in every region.
pub const STOCK_IMAGE: &str = "ami-03cf127a";

/// moto's server, started by `tests/moto/launcher.py` on a free port, stopped on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("CONVERGE_MOTO_PYTHON") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(venv.exists(), "the AWS emulator is not installed: run scripts/test (it creates .venv with moto)");
    venv
}

impl Moto {
    pub fn start() -> Moto {
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto/launcher.py");
        let mut child = Command::new(python())
            .arg(launcher)
            .stdin(Stdio::piped()) // the launcher exits when this closes, even if the test process dies
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto's server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("reading moto's port");
        let port = line.trim().strip_prefix("port=").unwrap_or_else(|| panic!("moto did not start: {line:?}")).to_string();
        Moto { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(Credentials::new("testing", "testing", None, None, "tests")))
            .build()
    }

    /// converge's own clients, with a fresh call counter.
    pub fn aws(&self) -> Aws {
        Aws::from_conf(&self.sdk_config(), REGION)
    }

    /// The hosted zones the example fleet (`desired-state/`) needs: the agency's, a client's whose DNS the
    /// agency manages (acme), and the private zone of the database's hostname.
    pub async fn example_zones(&self) {
        for (i, zone) in ["sites.agency.net", "acme.co.uk"].iter().enumerate() {
            self.route53().create_hosted_zone().name(*zone).caller_reference(format!("zone-{i}")).send().await.unwrap();
        }
        let vpc = self.ec2().describe_vpcs().send().await.unwrap().vpcs()[0].vpc_id().unwrap().to_string();
        let private = aws_sdk_route53::types::HostedZoneConfig::builder().private_zone(true).build();
        let in_vpc = aws_sdk_route53::types::Vpc::builder().vpc_id(vpc).vpc_region(aws_sdk_route53::types::VpcRegion::EuWest1).build();
        self.route53()
            .create_hosted_zone()
            .name("sites.internal")
            .caller_reference("zone-internal")
            .hosted_zone_config(private)
            .vpc(in_vpc)
            .send()
            .await
            .unwrap();
    }

    /// An independent client, to check results and to change things by hand.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config())
    }

    pub fn elb(&self) -> aws_sdk_elasticloadbalancing::Client {
        aws_sdk_elasticloadbalancing::Client::new(&self.sdk_config())
    }

    /// Path-style, as converge addresses an emulator.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.sdk_config()).force_path_style(true).build())
    }

    pub fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.sdk_config())
    }

    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk_config())
    }

    pub fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.sdk_config())
    }

    /// Registers a nightly image named `name` (made from an instance of one of moto's stock images), as the
    /// nightly build does; returns its id.
    pub async fn nightly_image(&self, name: &str) -> String {
        let ec2 = self.ec2();
        let run = ec2.run_instances().image_id(STOCK_IMAGE).min_count(1).max_count(1).send().await.unwrap();
        let instance = run.instances()[0].instance_id().unwrap().to_string();
        let image = ec2.create_image().instance_id(&instance).name(name).send().await.unwrap();
        ec2.terminate_instances().instance_ids(instance).send().await.unwrap();
        image.image_id().unwrap().to_string()
    }

    /// The converge binary with this emulator in its environment.
    pub fn converge(&self, dir: &Path, args: &[&str]) -> Run {
        run_converge(dir, args, Some(&self.endpoint), None)
    }

    /// The converge binary with this emulator and more variables in its environment.
    pub fn converge_with(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = converge_command(dir, args, Some(&self.endpoint));
        cmd.envs(env.iter().copied()).stdin(Stdio::null());
        let Output { status, stdout, stderr } = cmd.output().expect("running converge");
        Run { code: status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&stdout).into(), stderr: String::from_utf8_lossy(&stderr).into() }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A desired-state folder with the given files.
pub struct FleetDir {
    pub dir: tempfile::TempDir,
}

impl FleetDir {
    pub fn new(files: &[(&str, &str)]) -> FleetDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        FleetDir { dir }
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn load(&self) -> Fleet {
        model::load_dir(self.path()).unwrap_or_else(|d| panic!("{d}"))
    }
}

/// The output of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// The converge binary on `dir`, with an environment of its own: test credentials, no profile or region
/// from the machine running the tests, and `endpoint` (the emulator) when given.
pub fn converge_command(dir: &Path, args: &[&str], endpoint: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_converge"));
    cmd.args(args).arg("--dir").arg(dir);
    for var in ["AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing").env("AWS_SECRET_ACCESS_KEY", "testing");
    // No profile files from the machine running the tests.
    cmd.env("AWS_CONFIG_FILE", "/nonexistent").env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    if let Some(e) = endpoint {
        cmd.env("AWS_ENDPOINT_URL", e);
    }
    cmd
}

pub fn run_converge(dir: &Path, args: &[&str], endpoint: Option<&str>, stdin: Option<&str>) -> Run {
    let mut cmd = converge_command(dir, args, endpoint);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running converge");
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    Run { code: status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&stdout).into(), stderr: String::from_utf8_lossy(&stderr).into() }
}

/// Runs converge until it asks its question (`Enter a value:`), then `meanwhile` (someone else at work
/// while the person reads the plan), then gives `answer`.
pub async fn run_converge_answering(dir: &Path, args: &[&str], endpoint: Option<&str>, meanwhile: impl std::future::Future<Output = ()>, answer: &str) -> Run {
    use std::io::{Read, Write};
    let mut cmd = converge_command(dir, args, endpoint);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running converge");
    let (asked, question) = tokio::sync::oneshot::channel();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let (mut seen, mut chunk, mut asked) = (Vec::new(), [0u8; 4096], Some(asked));
        while let Ok(n @ 1..) = stdout.read(&mut chunk) {
            seen.extend_from_slice(&chunk[..n]);
            if asked.is_some() && String::from_utf8_lossy(&seen).contains("Enter a value:") {
                let _ = asked.take().unwrap().send(());
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let asked = question.await.is_ok();
    if asked {
        meanwhile.await;
        child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    let run = Run { code: status.code().unwrap_or(-1), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    assert!(asked, "converge asked nothing: {run:?}");
    run
}

/// Plans with the library.
pub async fn plan(aws: &Aws, fleet: &Fleet) -> Planned {
    planner::plan(aws, fleet, &PlanOptions::default()).await.expect("plan")
}

/// Plans and applies with the library; returns the plan and the report.
pub async fn apply(aws: &Aws, fleet: &Fleet) -> (Planned, Report) {
    let planned = plan(aws, fleet).await;
    let executor = AwsExecutor::new(aws.clone(), &planned.live, &planned.plan);
    let report = apply::apply(&planned.plan, &executor, 10, std::future::pending(), |_| {}).await.expect("apply");
    (planned, report)
}

/// Applies and asserts the next plan is empty: the core property of every kind.
pub async fn converge(aws: &Aws, fleet: &Fleet) -> Report {
    let (_, report) = apply(aws, fleet).await;
    assert!(report.ok(), "apply failed: {report:?}");
    let again = plan(aws, fleet).await;
    assert!(again.plan.is_empty(), "second plan is not empty:\n{}", converge::render::plan_text(&again.plan));
    report
}

pub const FLEET: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"

[network]
zones = ["eu-west-1a", "eu-west-1b"]
"#;

/// The smallest pool sites can be served by, launched from the image `Moto::nightly_image` registers: for
/// tests about something else than pools.
pub const NIGHTLY_POOL: &str = r#"
[image.nightly]
owners = ["self"]
name = "sites-nightly-*"

[pool.web]
image = "nightly"
instance_type = "t3.small"
min = 1
max = 2
"#;

/// A webhook on loopback, as a chat service offers: hands over the body of each request it receives,
/// answers 200.
pub fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/drift", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").unwrap();
            let _ = tx.send(String::from_utf8(body).unwrap());
        }
    });
    (url, rx)
}

/// A DNS server on loopback (UDP), as a recursive resolver answers: a name in `cnames` answers with its
/// CNAME chain and the addresses at its end (`addresses`), a name in `addresses` with them; a name in
/// `missing` does not exist (NXDOMAIN); any other name is refused (the lookup fails). Returns `IP:PORT`.
pub fn dns_server(cnames: &[(&str, &str)], addresses: &[(&str, &str)], missing: &[&str]) -> String {
    use hickory_resolver::proto::op::{Message, ResponseCode};
    use hickory_resolver::proto::rr::rdata::{A, CNAME};
    use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let name = |n: &str| Name::from_ascii(format!("{n}.")).unwrap();
    let key = |n: &Name| n.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let cnames: std::collections::BTreeMap<String, String> = cnames.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    let mut ips: std::collections::BTreeMap<String, Vec<std::net::Ipv4Addr>> = Default::default();
    for (n, ip) in addresses {
        ips.entry(n.to_string()).or_default().push(ip.parse().unwrap());
    }
    let missing: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
            reply.metadata.recursion_desired = query.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            reply.add_queries(query.queries.clone());
            let question = &query.queries[0];
            let mut at = key(question.name());
            if !cnames.contains_key(&at) && !ips.contains_key(&at) {
                reply.metadata.response_code = if missing.contains(&at) { ResponseCode::NXDomain } else { ResponseCode::Refused };
            }
            while let Some(target) = cnames.get(&at) {
                reply.add_answer(Record::from_rdata(name(&at), 60, RData::CNAME(CNAME(name(target)))));
                at = target.clone();
            }
            if question.query_type() == RecordType::A {
                for ip in ips.get(&at).into_iter().flatten() {
                    reply.add_answer(Record::from_rdata(name(&at), 60, RData::A(A(*ip))));
                }
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), from);
        }
    });
    addr
}

/// Copies a desired-state folder (without a local lock file).
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != ".converge.lock" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
