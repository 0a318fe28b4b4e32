//! CloudWatch alarms the fleet owns (a pool's CPU, a load balancer's unhealthy hosts) against the emulator:
//! created with their tags, planned again with no change, a threshold changed by hand put back, a removed
//! alarm deleted, and an alarm made by hand with the fleet's prefix never touched.

use crate::support::*;

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:alarms";

fn objects(cpu: u32) -> String {
    format!(
        r#"
[security_group.lb]
ingress = [{{ ports = "80", cidr = "0.0.0.0/0" }}]

[load_balancer.shared]
security_groups = ["lb"]
listeners = [{{ port = 80, protocol = "http", instance_port = 80 }}]
alarms = {{ unhealthy_hosts_above = 0, topic = "{TOPIC}" }}

[image.nightly]
owners = ["self"]
name = "sites-nightly-*"

[pool.web]
image = "nightly"
instance_type = "t3.large"
min = 1
max = 2
alarms = {{ cpu_above = {cpu}, topic = "{TOPIC}" }}
"#
    )
}

async fn alarms(moto: &Moto) -> Vec<aws_sdk_cloudwatch::types::MetricAlarm> {
    let conf = aws_sdk_cloudwatch::config::Builder::from(&moto.sdk_config()).build();
    let cw = aws_sdk_cloudwatch::Client::from_conf(conf);
    cw.describe_alarms().send().await.unwrap().metric_alarms().to_vec()
}

#[tokio::test]
async fn alarms_are_created_tagged_put_back_after_a_change_by_hand_and_deleted_when_removed() {
    let moto = Moto::start();
    moto.nightly_image("sites-nightly-2026-11-25").await;
    let conf = aws_sdk_cloudwatch::config::Builder::from(&moto.sdk_config()).build();
    let cw = aws_sdk_cloudwatch::Client::from_conf(conf);
    // Someone's own alarm, named like the fleet's: never the fleet's.
    cw.put_metric_alarm()
        .alarm_name("agency-billing")
        .namespace("AWS/Billing")
        .metric_name("EstimatedCharges")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .period(21600)
        .evaluation_periods(1)
        .threshold(1000.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    let dir = FleetDir::new(&[("fleet.toml", FLEET), ("objects.toml", &objects(80))]);
    let aws = moto.aws();
    converge(&aws, &dir.load()).await;
    let found = alarms(&moto).await;
    let cpu = found.iter().find(|a| a.alarm_name() == Some("agency-web-cpu-high")).expect("the pool's alarm");
    assert_eq!((cpu.metric_name(), cpu.threshold(), cpu.period(), cpu.evaluation_periods()), (Some("CPUUtilization"), Some(80.0), Some(300), Some(2)));
    assert_eq!(cpu.dimensions()[0].value(), Some("agency-web"));
    assert_eq!((cpu.alarm_actions(), cpu.ok_actions()), (&[TOPIC.to_string()][..], &[TOPIC.to_string()][..]));
    let hosts = found.iter().find(|a| a.alarm_name() == Some("agency-shared-unhealthy-hosts")).expect("the load balancer's alarm");
    assert_eq!((hosts.metric_name(), hosts.threshold(), hosts.dimensions()[0].value()), (Some("UnHealthyHostCount"), Some(0.0), Some("agency-shared")));
    let tags = cw.list_tags_for_resource().resource_arn(cpu.alarm_arn().unwrap()).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == Some("converge:address") && t.value() == Some("alarm.web-cpu-high")), "{tags:?}");
    aws.stats.reset();
    let planned = plan(&aws, &dir.load()).await;
    assert!(planned.plan.is_empty(), "{}", converge::render::plan_text(&planned.plan));
    // The fleet's alarms' tags come from one index call (the buckets' from another, beside it); the
    // hand-made one is never read.
    assert_eq!((aws.stats.calls("GetResources"), aws.stats.calls("ListTagsForResource")), (2, 0));
    assert!(planned.plan.unmanaged.iter().all(|u| u.name != "agency-billing"), "not in the fleet's scope: {:?}", planned.plan.unmanaged);

    // By hand: a higher threshold. The plan shows it; apply puts it back with one PutMetricAlarm.
    cw.put_metric_alarm()
        .alarm_name("agency-web-cpu-high")
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("AutoScalingGroupName").value("agency-web").build())
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(300)
        .evaluation_periods(2)
        .threshold(95.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .alarm_actions(TOPIC)
        .ok_actions(TOPIC)
        .send()
        .await
        .unwrap();
    let text = converge::render::plan_text(&plan(&aws, &dir.load()).await.plan);
    assert!(text.contains("~ alarm = Average AWS/EC2/CPUUtilization (AutoScalingGroupName=agency-web) > 95 for 2 x 300s -> Average AWS/EC2/CPUUtilization (AutoScalingGroupName=agency-web) > 80 for 2 x 300s"), "{text}");
    aws.stats.reset();
    converge(&aws, &dir.load()).await;
    assert_eq!(aws.stats.calls("PutMetricAlarm"), 1);
    assert_eq!(alarms(&moto).await.iter().find(|a| a.alarm_name() == Some("agency-web-cpu-high")).unwrap().threshold(), Some(80.0));

    // Silenced by hand: drift too.
    cw.disable_alarm_actions().alarm_names("agency-shared-unhealthy-hosts").send().await.unwrap();
    let text = converge::render::plan_text(&plan(&aws, &dir.load()).await.plan);
    assert!(text.contains("~ actions_enabled = false -> true"), "{text}");
    converge(&aws, &dir.load()).await;
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());

    // Removed from the TOML: deleted; the hand-made one stays.
    dir.write("objects.toml", &objects(80).replace(&format!("alarms = {{ cpu_above = 80, topic = \"{TOPIC}\" }}\n"), ""));
    converge(&aws, &dir.load()).await;
    let names: Vec<String> = alarms(&moto).await.iter().filter_map(|a| a.alarm_name().map(str::to_string)).collect();
    assert_eq!(names, vec!["agency-billing".to_string(), "agency-shared-unhealthy-hosts".to_string()]);
    assert!(plan(&aws, &dir.load()).await.plan.is_empty());
}
