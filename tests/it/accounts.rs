//! The account guard: `fleet.account` must match the caller's account (moto's is 123456789012).

use converge::aws::budget::CallClass;

use crate::support::*;

const GROUP: &str = "[security_group.lb]\ningress = [{ ports = \"80\", cidr = \"0.0.0.0/0\" }]\n";

#[test]
fn another_account_is_refused_before_anything_is_written() {
    let moto = Moto::start();
    let fleet = FLEET.replace("region = \"eu-west-1\"", "region = \"eu-west-1\"\naccount = \"210987654321\"");
    let dir = FleetDir::new(&[("fleet.toml", &fleet), ("groups.toml", GROUP)]);
    let run = moto.converge(dir.path(), &["apply", "--auto-approve", "--stats"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("refusing to run against account 123456789012: the fleet belongs to account 210987654321"), "{run:?}");
    // The identity is asked beside the first reads, which are dropped: only reads were made.
    let operations: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("  ") && l.trim_end().ends_with(char::is_numeric)).collect();
    assert!(operations.iter().any(|l| l.contains("GetCallerIdentity")), "{run:?}");
    // `Service Operation  N`: the operation is the word before the count.
    let operation = |l: &&str| l.split_whitespace().rev().nth(1).unwrap_or_default().to_string();
    assert!(operations.iter().map(operation).all(|op| CallClass::of(&op) == CallClass::Describe), "only reads: {run:?}");
}

#[test]
fn the_right_account_is_accepted() {
    let moto = Moto::start();
    let fleet = FLEET.replace("region = \"eu-west-1\"", "region = \"eu-west-1\"\naccount = \"123456789012\"");
    let dir = FleetDir::new(&[("fleet.toml", &fleet), ("groups.toml", GROUP)]);
    let run = moto.converge(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{run:?}");
}
