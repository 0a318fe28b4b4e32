//! `converge drift` for cron: exit codes, the one-line summary, unmanaged objects and the webhook.

use crate::support::*;

const OBJECTS: &str = r#"
[security_group.lb]
ingress = [{ ports = "443", cidr = "0.0.0.0/0" }]
[load_balancer.shared]
security_groups = ["lb"]
listeners = [{ port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/shared-2026" }]
[pool.web]
image = "nightly"
instance_type = "t3.large"
min = 1
max = 2
[image.nightly]
name = "sites-nightly-*"
[site.acme]
domain = "www.acme.co.uk"
pool = "web"
load_balancer = "shared"
repo = "git@git.agency.net:sites/acme.git"
commit = "4f2a9c1e0b"
"#;

#[tokio::test]
async fn a_listener_changed_by_hand_is_drift_and_the_webhook_hears_of_it_once() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", OBJECTS)]);
    converge(&moto.aws(), &dir.load()).await;
    let (url, received) = webhook_receiver();

    let run = moto.converge(dir.path(), &["drift", "--webhook", &url]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "no drift: live AWS matches the desired state\n");
    assert!(received.try_recv().is_err(), "no message without drift");

    moto.elb()
        .set_load_balancer_listener_ssl_certificate()
        .load_balancer_name("agency-shared")
        .load_balancer_port(443)
        .ssl_certificate_id("arn:aws:iam::123456789012:server-certificate/someone-else")
        .send()
        .await
        .unwrap();
    let run = moto.converge(dir.path(), &["drift", "--webhook", &url]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "drift: 1 resource (1 site affected): load_balancer.shared listener 443 certificate\n");
    let message: serde_json::Value = serde_json::from_str(&received.recv_timeout(std::time::Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(
        message["text"],
        "converge: fleet agency (account 123456789012, eu-west-1): drift: 1 resource (1 site affected): load_balancer.shared listener 443 certificate"
    );
    assert!(received.recv_timeout(std::time::Duration::from_millis(300)).is_err(), "exactly one message");

    let run = moto.converge(dir.path(), &["drift", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["changes"][0]["fields"][0]["after"], "arn:aws:iam::123456789012:server-certificate/shared-2026");
}

#[tokio::test]
async fn a_hand_made_load_balancer_on_our_group_is_unmanaged_not_drift_unless_asked() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", OBJECTS)]);
    converge(&moto.aws(), &dir.load()).await;
    let groups = moto.ec2().describe_security_groups().group_names("agency-lb").send().await.unwrap();
    let lb_group = groups.security_groups()[0].group_id().unwrap().to_string();
    let listener = aws_sdk_elasticloadbalancing::types::Listener::builder().protocol("HTTP").load_balancer_port(80).instance_port(80).build().unwrap();
    moto.elb()
        .create_load_balancer()
        .load_balancer_name("handmade")
        .listeners(listener)
        .availability_zones("eu-west-1a")
        .security_groups(lb_group)
        .send()
        .await
        .unwrap();

    let run = moto.converge(dir.path(), &["drift"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "no drift: live AWS matches the desired state; 1 unmanaged: load_balancer handmade uses security_group.lb\n");
    let run = moto.converge(dir.path(), &["drift", "--fail-on", "unmanaged"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = moto.converge(dir.path(), &["plan"]);
    assert!(run.stdout.contains("? load_balancer handmade: uses security_group.lb"), "{run:?}");
}
