//! Faults between the SDK and AWS: throttling, server errors and dropped connections. Apply
//! must still converge, or stop cleanly so that the next apply finishes the work.

use converge::apply;
use converge::aws::{Aws, AwsExecutor};
use converge::error::{Class, Classify};

use crate::proxy::{Fault, Faults, Proxy};
use crate::support::*;

const FLEET_FILES: &str = r#"
[security_group.lb]
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }, { ports = "443", cidr = "0.0.0.0/0" }]
[security_group.web]
ingress = [{ ports = "80", from = "lb" }]
[load_balancer.shared]
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 80 }]
[load_balancer.other]
security_groups = ["lb"]
listeners = [{ port = 80, protocol = "http", instance_port = 8080 }]
"#;

fn through(moto: &Moto, proxy: &Proxy) -> Aws {
    let conf = moto.sdk_config().into_builder().endpoint_url(&proxy.endpoint).build();
    Aws::from_conf(&conf, REGION)
}

#[tokio::test]
async fn apply_converges_through_throttling_server_errors_and_dropped_connections() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("fleet-objects.toml", FLEET_FILES)]);
    for fault in [Fault::Throttle, Fault::Unavailable, Fault::Drop] {
        let proxy = Proxy::start(&moto.endpoint, Faults { first_attempt: Some(fault), ..Faults::default() }).await;
        let aws = through(&moto, &proxy);
        converge(&aws, &dir.load()).await;
        let injected = proxy.injected.load(std::sync::atomic::Ordering::SeqCst);
        assert!(injected > 0, "{fault:?}: faults were injected");
        // The counter sees every attempt: each faulted request counts its failed attempt and its retry, so the
        // retries are visible in --stats.
        let attempts = aws.stats.total();
        assert!(attempts >= 2 * injected as u64, "{fault:?}: {attempts} attempts counted for {injected} faulted requests");
        // Tear down for the next fault kind, through the same faults.
        dir.write("fleet-objects.toml", "");
        converge(&aws, &dir.load()).await;
        dir.write("fleet-objects.toml", FLEET_FILES);
    }
}

#[tokio::test]
async fn a_call_that_keeps_failing_stops_its_change_cleanly_and_the_next_apply_finishes() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("fleet-objects.toml", FLEET_FILES)]);
    let fleet = dir.load();
    let proxy = Proxy::start(&moto.endpoint, Faults { always: vec![("ConfigureHealthCheck", Fault::Throttle)], ..Faults::default() }).await;
    let aws = through(&moto, &proxy);
    let planned = plan(&aws, &fleet).await;
    let executor = AwsExecutor::new(aws.clone(), &planned.live);
    let report = apply::apply(&planned.plan, &executor, 10, std::future::pending(), |_| {}).await.unwrap();
    assert_eq!(report.failed.len(), 2, "both load balancers: {report:?}");
    for (address, error) in &report.failed {
        assert_eq!(address.kind, converge::resource::Kind::LoadBalancer);
        assert!(error.to_string().contains("ConfigureHealthCheck"), "{error:?}");
        // Still throttled after the SDK's last attempt: the report says so, by class.
        assert_eq!(error.error.class, Class::Throttled, "{error:?}");
        assert_eq!(error.error.operation.as_deref(), Some("elasticloadbalancing:ConfigureHealthCheck"), "{error:?}");
        assert_eq!(error.error.code.as_deref(), Some("Throttling"), "{error:?}");
    }
    assert_eq!(report.class(), Some(Class::Throttled));
    assert_eq!(report.applied.len(), 2, "the groups: {report:?}");

    // The load balancers exist but their health checks were never set: the next plan shows exactly that.
    let direct = moto.aws();
    let next = plan(&direct, &fleet).await;
    assert_eq!(next.plan.summary().change, 2, "{}", converge::render::plan_text(&next.plan));
    assert!(
        next.plan
            .changes
            .iter()
            .all(|c| c.fields.iter().all(|f| f.field.starts_with("health_check") || f.field == "cross_zone" || f.field == "connection_draining"))
    );
    converge(&direct, &fleet).await;
}

#[tokio::test]
async fn a_failed_read_is_classified_from_what_came_back() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("fleet-objects.toml", FLEET_FILES)]);
    let fleet = dir.load();
    for (fault, class) in [(Fault::Throttle, Class::Throttled), (Fault::Unavailable, Class::Transient), (Fault::Drop, Class::Transient)] {
        let proxy = Proxy::start(&moto.endpoint, Faults { always: vec![("DescribeSecurityGroups", fault)], ..Faults::default() }).await;
        // One attempt: the SDK's retries would only make the test slower; what fails is classified the same.
        let conf = moto
            .sdk_config()
            .into_builder()
            .endpoint_url(&proxy.endpoint)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .build();
        let aws = Aws::from_conf(&conf, REGION);
        let Err(e) = converge::planner::plan(&aws, &fleet, &Default::default()).await else { panic!("{fault:?}: the read succeeded") };
        assert_eq!(e.class(), class, "{fault:?}: {e}");
        assert_eq!(e.operation().as_deref(), Some("ec2:DescribeSecurityGroups"), "{fault:?}: {e}");
    }
}
