//! Management policies against the emulator: an observed object drifted by hand is reported and never
//! written; a table under no-delete keeps what leaves the desired state.

use crate::support::*;

const FLEET: &str = "[fleet]\nname = \"agency\"\nregion = \"eu-west-1\"\n\n\
    [security_group.lb]\ndescription = \"HTTP from anywhere\"\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n\n\
    [security_group.web]\ningress = [{ ports = \"80\", from = \"lb\" }]\n";

async fn ingress(moto: &Moto, name: &str) -> usize {
    let filter = aws_sdk_ec2::types::Filter::builder().name("group-name").values(name).build();
    moto.ec2().describe_security_groups().filters(filter).send().await.unwrap().security_groups()[0].ip_permissions().len()
}

#[tokio::test]
async fn an_observed_group_drifted_by_hand_is_reported_and_never_written() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET)]);
    let run = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "{run:?}");

    // web is only watched from now on; someone opens SSH on it by hand.
    dir.write("fleet.toml", &FLEET.replace("[security_group.web]\n", "[security_group.web]\nmanage = \"observe\"\n"));
    let filter = aws_sdk_ec2::types::Filter::builder().name("group-name").values("agency-web").build();
    let web = moto.ec2().describe_security_groups().filters(filter).send().await.unwrap().security_groups()[0].group_id().unwrap().to_string();
    let ssh = aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    moto.ec2().authorize_security_group_ingress().group_id(&web).ip_permissions(ssh).send().await.unwrap();

    let plan = moto.converge(dir.path(), &["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("No changes to apply.") && plan.stdout.contains("# held: manage = \"observe\""), "{plan:?}");
    assert!(plan.stdout.contains("- ingress") && plan.stdout.contains("tcp 22 from 0.0.0.0/0"), "the drift is shown: {plan:?}");
    let apply = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(ingress(&moto, "agency-web").await, 2, "the hand-made rule stays: observe never writes");
    let drift = moto.converge(dir.path(), &["drift"]);
    assert_eq!(drift.code, 2, "held changes are drift: {drift:?}");
    assert!(drift.stdout.contains("security_group.web ingress"), "{drift:?}");
    let json = moto.converge(dir.path(), &["plan", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["held"][0]["address"], "security_group.web");
    assert_eq!(doc["changes"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn under_no_delete_a_group_removed_from_the_desired_state_stays() {
    let moto = Moto::start();
    let dir = FleetDir::new(&[("fleet.toml", FLEET)]);
    assert_eq!(moto.converge(dir.path(), &["apply", "--auto-approve"]).code, 0);
    let kept = format!("{}\n", FLEET.split("\n[security_group.web]").next().unwrap())
        .replace("region = \"eu-west-1\"\n", "region = \"eu-west-1\"\nmanage = { security_group = \"no-delete\" }\n");
    dir.write("fleet.toml", &kept);
    let apply = moto.converge(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(apply.stdout.contains("manage = \"no-delete\": never deleted"), "{apply:?}");
    assert_eq!(ingress(&moto, "agency-web").await, 1, "the group is still there");
}
