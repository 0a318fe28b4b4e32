//! Certificate coverage against the emulator: an ACM certificate (imported, so it has names and an end)
//! that misses one of a site's aliases is named in the plan and fails `validate --online`; one that covers
//! them shows its days left in the sites sheet.

use crate::support::*;

const CERT: &str = include_str!("../fixtures/acme-test-cert.pem");
const KEY: &str = include_str!("../fixtures/acme-test-key.pem");

fn objects(certificate: &str, aliases: &str) -> String {
    format!(
        r#"
[security_group.lb]
ingress = [{{ ports = "443", cidr = "0.0.0.0/0" }}]
[load_balancer.acme]
pool = "web"
security_groups = ["lb"]
listeners = [{{ port = 443, protocol = "https", instance_port = 80, certificate = "{certificate}" }}]
[site.acme]
domain = "www.acme.co.uk"
aliases = [{aliases}]
pool = "web"
load_balancer = "acme"
repo = "git@x:acme.git"
commit = "abc1234"
"#
    )
}

#[tokio::test]
async fn a_certificate_missing_one_alias_is_reported_with_that_alias() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let acm = aws_sdk_acm::Client::new(&moto.sdk_config());
    let imported = acm
        .import_certificate()
        .certificate(aws_smithy_types::Blob::new(CERT.as_bytes()))
        .private_key(aws_smithy_types::Blob::new(KEY.as_bytes()))
        .send()
        .await
        .unwrap();
    let arn = imported.certificate_arn().unwrap().to_string();

    let covered =
        FleetDir::new(&[("fleet.toml", FLEET), ("pool.toml", NIGHTLY_POOL), ("objects.toml", &objects(&arn, "\"acme.co.uk\", \"eu.shop.acme.co.uk\""))]);
    let run = moto.converge(covered.path(), &["validate", "--online"]);
    assert_eq!(run.code, 0, "{run:?}");
    // The sheet says how long the certificate has left (it ends on 2036-11-23).
    let run = moto.converge(covered.path(), &["sites", "--format", "json", "--resolver", "none"]);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"));
    let days = rows[0]["certificate_days_left"].as_i64().unwrap();
    assert!(days > 3000 && rows[0]["certificate"] == format!("ok, {days} day(s) left").as_str(), "{rows}");

    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("pool.toml", NIGHTLY_POOL), ("objects.toml", &objects(&arn, "\"acme.co.uk\", \"acme.com\""))]);
    let run = moto.converge(dir.path(), &["plan"]);
    assert_eq!(run.code, 0, "a warning, not an error, in a plan: {run:?}");
    assert!(run.stdout.contains("! site.acme: acme.com is not covered (the certificate names *.shop.acme.co.uk, acme.co.uk, www.acme.co.uk)"), "{run:?}");
    assert!(run.stdout.contains(&format!("certificate: {arn}")), "{run:?}");
    let run = moto.converge(dir.path(), &["validate", "--online"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("error: site.acme: acme.com is not covered"), "{run:?}");
}
