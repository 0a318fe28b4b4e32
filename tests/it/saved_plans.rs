//! Saved plans: apply exactly what was reviewed, refuse when it went stale, never twice.

use crate::support::*;

const OBJECTS: &str = r#"
[security_group.lb]
ingress = [{ ports = "443", cidr = "0.0.0.0/0" }]
[security_group.other]
ingress = [{ ports = "22", cidr = "10.0.0.0/8" }]
[load_balancer.shared]
security_groups = ["lb"]
listeners = [{ port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/shared-2026" }]
"#;

/// Someone turns cross-zone balancing off on the shared balancer by hand.
async fn cross_zone_off(moto: &Moto) {
    moto.elb()
        .modify_load_balancer_attributes()
        .load_balancer_name("agency-shared")
        .load_balancer_attributes(
            aws_sdk_elasticloadbalancing::types::LoadBalancerAttributes::builder()
                .cross_zone_load_balancing(aws_sdk_elasticloadbalancing::types::CrossZoneLoadBalancing::builder().enabled(false).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Someone opens MySQL on the `other` security group, which no plan here touches.
async fn open_other_group(moto: &Moto) {
    let other = moto.ec2().describe_security_groups().group_names("agency-other").send().await.unwrap();
    let other = other.security_groups()[0].group_id().unwrap().to_string();
    moto.ec2()
        .authorize_security_group_ingress()
        .group_id(&other)
        .ip_protocol("tcp")
        .from_port(3306)
        .to_port(3306)
        .cidr_ip("10.9.0.0/16")
        .send()
        .await
        .unwrap();
}

async fn idle_timeout(moto: &Moto) -> i32 {
    let attrs = moto.elb().describe_load_balancer_attributes().load_balancer_name("agency-shared").send().await.unwrap();
    attrs.load_balancer_attributes().unwrap().connection_settings().unwrap().idle_timeout()
}

#[tokio::test]
async fn a_saved_plan_applies_despite_unrelated_changes_refuses_related_ones_and_never_twice() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", OBJECTS)]);
    converge(&moto.aws(), &dir.load()).await;
    let plans = tempfile::tempdir().unwrap();
    let file = plans.path().join("plan.json");
    let file = file.to_str().unwrap();

    dir.write("objects.toml", &OBJECTS.replace("shared-2026", "shared-2027"));
    let run = moto.converge(dir.path(), &["plan", "--out", file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("Saved the plan to"), "{run:?}");
    let saved = std::fs::read_to_string(file).unwrap();
    assert!(saved.contains("\"format\": \"converge-plan/1\""));

    // Someone changes an object the plan does not touch: the plan is still good.
    open_other_group(&moto).await;
    let run = moto.converge(dir.path(), &["apply", file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Apply complete! Resources: 0 added, 1 changed, 0 destroyed."), "{run:?}");
    let lb = moto.elb().describe_load_balancers().load_balancer_names("agency-shared").send().await.unwrap();
    let cert = lb.load_balancer_descriptions()[0].listener_descriptions()[0].listener().unwrap().ssl_certificate_id().unwrap().to_string();
    assert!(cert.ends_with("shared-2027"));

    let run = moto.converge(dir.path(), &["apply", file]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("was already applied"), "{run:?}");

    // Someone changes the very object a new plan is about: refused, naming it and the field.
    dir.write("objects.toml", &OBJECTS.replace("shared-2026", "shared-2027").replace("[load_balancer.shared]", "[load_balancer.shared]\nidle_timeout = 300"));
    assert_eq!(moto.converge(dir.path(), &["plan", "--out", file]).code, 0);
    cross_zone_off(&moto).await;
    let run = moto.converge(dir.path(), &["apply", file]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("is stale"), "{run:?}");
    assert!(run.stderr.contains("load_balancer.shared: changed since the plan (cross_zone)"), "{run:?}");
    assert_eq!(idle_timeout(&moto).await, 60, "nothing was applied");

    // The desired state changes after the plan: refused, naming the file.
    assert_eq!(moto.converge(dir.path(), &["plan", "--out", file]).code, 0);
    dir.write("objects.toml", OBJECTS);
    let run = moto.converge(dir.path(), &["apply", file]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("the desired state changed since"), "{run:?}");
    assert!(run.stderr.contains("objects.toml (changed)"), "{run:?}");
}

#[tokio::test]
async fn a_plan_confirmed_at_the_prompt_is_read_again_after_the_answer_and_refused_if_it_went_stale() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", OBJECTS)]);
    converge(&moto.aws(), &dir.load()).await;
    dir.write("objects.toml", &OBJECTS.replace("[load_balancer.shared]", "[load_balancer.shared]\nidle_timeout = 300"));

    // Someone turns cross-zone balancing off on the very balancer while the plan waits for its answer.
    let run = run_converge_answering(dir.path(), &["apply"], Some(&moto.endpoint), cross_zone_off(&moto), "yes\n").await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("what this plan changes was changed while it waited for an answer; nothing was applied"), "{run:?}");
    assert!(run.stderr.contains("load_balancer.shared: changed since the plan (cross_zone)"), "{run:?}");
    assert!(run.stderr.contains("Run `converge apply` again for a new plan."), "{run:?}");
    assert_eq!(idle_timeout(&moto).await, 60, "nothing was applied");

    // A change elsewhere while it waits does not stop it: the apply runs on what it read again.
    let run = run_converge_answering(dir.path(), &["apply", "--stats"], Some(&moto.endpoint), open_other_group(&moto), "yes\n").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Apply complete! Resources: 0 added, 1 changed, 0 destroyed."), "{run:?}");
    assert_eq!(idle_timeout(&moto).await, 300);
    // What it read again: the load balancer's kind, and the security groups it names; no other kind.
    let calls = |operation: &str| -> u64 {
        let line = run.stderr.lines().find(|l| l.trim_start().starts_with(operation));
        line.and_then(|l| l.split_whitespace().last()?.parse().ok()).unwrap_or(0)
    };
    assert_eq!(calls("Elastic Load Balancing DescribeLoadBalancers "), 2, "{run:?}");
    assert_eq!(calls("Elastic Load Balancing DescribeLoadBalancerAttributes "), 2, "{run:?}");
    assert_eq!(calls("EC2 DescribeSecurityGroups "), 4, "by tag and by name, twice: {run:?}");
    assert_eq!(calls("EC2 DescribeLaunchTemplates "), 1, "{run:?}");
    assert_eq!(calls("Auto Scaling DescribeAutoScalingGroups "), 1, "{run:?}");

    // `forget` is confirmed the same way, and checked the same way.
    let run = run_converge_answering(dir.path(), &["forget", "load_balancer.shared"], Some(&moto.endpoint), cross_zone_off(&moto), "yes\n").await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("load_balancer.shared: changed since the plan (cross_zone)"), "{run:?}");
    assert!(run.stderr.contains("Run `converge forget` again for a new plan."), "{run:?}");
    let tags = moto.elb().describe_tags().load_balancer_names("agency-shared").send().await.unwrap();
    assert!(tags.tag_descriptions()[0].tags().iter().any(|t| t.key() == "converge:fleet"), "still the fleet's: {tags:?}");
}
