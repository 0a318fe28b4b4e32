//! Pictures of the fleet (`converge graph`), as DOT (Graphviz) and as Mermaid (GitHub renders it in
//! markdown), or as plain lines:
//! - the dependency graph of the desired state: an arrow from an object to each object it refers to;
//! - a plan's graph: what changes, and an arrow from each change to the changes that wait for it (the
//!   order apply runs them in);
//! - reachability: who can reach whom on which ports (internet, load balancers, pools, databases, and any
//!   other source a rule names), from the ingress rules of the security groups each tier uses, with every
//!   path the tiers do not need marked (the internet reaching anything but a load balancer's listeners, a
//!   load balancer reaching anything but its pools' instance ports, a pool reaching a database on anything
//!   but the engine's port, any other tier to tier path).
//!
//! Pure: from specs and plans.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::plan::Plan;
use crate::resource::security_group::{GroupRef, Peer, RuleSpec};
use crate::resource::{Address, Desired, Kind, Spec};

/// How a picture is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// One line per arrow.
    Text,
    /// Graphviz: `converge graph --format dot | dot -Tsvg > fleet.svg`.
    Dot,
    /// Mermaid: a `flowchart`, as GitHub renders in markdown.
    Mermaid,
}

/// Nodes (id, label) and labelled arrows; `marked` arrows are drawn red and dashed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    pub nodes: Vec<(String, String)>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: String,
    /// Why the arrow is marked (a path the tiers do not need).
    pub marked: Option<String>,
}

/// The desired state's objects, each with an arrow to what it refers to.
pub fn dependencies(desired: &Desired) -> Graph {
    let mut g = Graph::default();
    for (address, spec) in desired {
        g.nodes.push((address.to_string(), address.to_string()));
        for to in spec.references().into_iter().chain(spec.waits_for_changes()).collect::<BTreeSet<_>>() {
            if desired.contains_key(&to) {
                g.edges.push(Edge { from: address.to_string(), to: to.to_string(), label: String::new(), marked: None });
            }
        }
    }
    g
}

/// A plan's changes, each with an arrow to the changes that wait for it.
pub fn plan(plan: &Plan) -> Graph {
    let mut g = Graph::default();
    for c in &plan.changes {
        g.nodes.push((c.address.to_string(), format!("{} {}", super::text::symbol(c.action).trim(), c.address)));
    }
    for c in &plan.changes {
        for before in c.after.iter().chain(&c.then_after).collect::<BTreeSet<_>>() {
            if plan.change(before).is_some() {
                g.edges.push(Edge { from: before.to_string(), to: c.address.to_string(), label: String::new(), marked: None });
            }
        }
    }
    g
}

/// A tier of the fleet that rules let traffic reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Internet,
    LoadBalancer,
    Pool,
    Database,
    Other,
}

struct Target {
    name: String,
    tier: Tier,
    groups: BTreeSet<GroupRef>,
    /// The ports the tier serves: a load balancer's listeners, a pool's instance ports (for the load
    /// balancers attached to it), a database's engine port.
    serves: BTreeSet<i32>,
    /// For a pool: the load balancers it serves behind.
    behind: BTreeSet<String>,
}

fn engine_port(engine: Option<&str>) -> i32 {
    match engine {
        Some(e) if e.starts_with("postgres") || e.starts_with("aurora-postgresql") => 5432,
        Some(e) if e.starts_with("sqlserver") => 1433,
        Some(e) if e.starts_with("oracle") => 1521,
        _ => 3306,
    }
}

fn targets(desired: &Desired) -> Vec<Target> {
    let mut out = Vec::new();
    let mut instance_ports: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for (a, spec) in desired {
        match spec {
            Spec::LoadBalancer(lb) => {
                // Its instances are reached on the listeners' instance ports and the health check's
                // (`HTTP:8080/health`).
                let mut ports: BTreeSet<i32> = lb.listeners.values().map(|l| i32::from(l.instance_port)).collect();
                let check = lb.health_check.target.split_once(':').map(|(_, rest)| rest.split('/').next().unwrap_or(rest));
                ports.extend(check.and_then(|p| p.parse::<i32>().ok()));
                instance_ports.insert(lb.name.clone(), ports);
                out.push(Target {
                    name: a.to_string(),
                    tier: Tier::LoadBalancer,
                    groups: lb.security_groups.clone(),
                    serves: lb.listeners.keys().map(|p| i32::from(*p)).collect(),
                    behind: BTreeSet::new(),
                });
            }
            Spec::DbInstance(db) => {
                let engine = db.engine.as_deref().or_else(|| {
                    let (primary, _) = db.replica_of.as_ref()?;
                    match desired.get(&Address::new(Kind::DbInstance, primary)) {
                        Some(Spec::DbInstance(p)) => p.engine.as_deref(),
                        _ => None,
                    }
                });
                let name = format!("database.{}", a.name);
                out.push(Target {
                    name,
                    tier: Tier::Database,
                    groups: db.security_groups.clone(),
                    serves: [engine_port(engine)].into(),
                    behind: BTreeSet::new(),
                });
            }
            _ => {}
        }
    }
    for (a, spec) in desired {
        if let Spec::LaunchTemplate(t) = spec {
            let group = match desired.get(&Address::new(Kind::AutoScalingGroup, &a.name)) {
                Some(Spec::AutoScalingGroup(g)) => Some(g),
                _ => None,
            };
            let lbs: BTreeSet<String> = group.map(|g| g.load_balancers.keys().cloned().collect()).unwrap_or_default();
            let serves = lbs.iter().flat_map(|lb| instance_ports.get(lb).cloned().unwrap_or_default()).collect();
            let behind = desired
                .iter()
                .filter_map(|(la, s)| match s {
                    Spec::LoadBalancer(lb) if lbs.contains(&lb.name) => Some(la.to_string()),
                    _ => None,
                })
                .collect();
            out.push(Target { name: format!("pool.{}", a.name), tier: Tier::Pool, groups: t.data.security_groups.clone(), serves, behind });
        }
    }
    out
}

/// Whether the rule opens a port outside `serves` (all traffic does).
fn opens_more(rule: &RuleSpec, serves: &BTreeSet<i32>) -> bool {
    match rule.protocol.as_str() {
        "tcp" if rule.from_port >= 0 => (rule.from_port..=rule.to_port).any(|p| !serves.contains(&p)),
        _ => true,
    }
}

/// Why a path from `source` (its tier, its name) to `target` on `rule` is not one the tiers need, if so.
fn unneeded(source: (Tier, &str), target: &Target, rule: &RuleSpec) -> Option<String> {
    let more = opens_more(rule, &target.serves);
    match (source.0, target.tier) {
        (Tier::Internet, Tier::LoadBalancer) if !more => None,
        (Tier::Internet, Tier::LoadBalancer) => Some("the internet needs only the load balancer's listener ports".into()),
        (Tier::Internet, _) => Some("the internet needs to reach only the load balancers".into()),
        (Tier::LoadBalancer, Tier::Pool) if target.behind.contains(source.1) && !more => None,
        (Tier::LoadBalancer, Tier::Pool) if target.behind.contains(source.1) => Some("a load balancer needs only its pool's instance ports".into()),
        (Tier::Pool, Tier::Database) if !more => None,
        (Tier::Pool, Tier::Database) => Some("a pool needs only the database's port".into()),
        // A tier reaching itself (instances of one pool, a replica and its primary) is its own business.
        (s, t) if s == t && (source.1 == target.name || s == Tier::Database) => None,
        (Tier::LoadBalancer | Tier::Pool | Tier::Database, _) => Some("not a path between adjacent tiers (internet, load balancer, pool, database)".into()),
        // A private network or another group: shown, not judged.
        _ => None,
    }
}

/// One arrow of reachability: the rules' ports, and why it is marked.
type Arrow = (BTreeSet<String>, BTreeSet<String>);

/// Who can reach whom, from the ingress rules of each tier's groups.
pub fn reachability(desired: &Desired) -> Graph {
    let targets = targets(desired);
    let groups: BTreeMap<String, &Spec> = desired.iter().filter(|(a, _)| a.kind == Kind::SecurityGroup).map(|(a, s)| (a.name.clone(), s)).collect();
    // The tiers using each group: the sources its name stands for.
    let users = |g: &GroupRef| -> Vec<(Tier, String)> {
        let found: Vec<(Tier, String)> = targets.iter().filter(|t| t.groups.contains(g)).map(|t| (t.tier, t.name.clone())).collect();
        if found.is_empty() { vec![(Tier::Other, g.to_string())] } else { found }
    };
    let mut arrows: BTreeMap<(String, String), Arrow> = BTreeMap::new();
    let mut nodes: BTreeMap<String, Tier> = BTreeMap::new();
    for target in &targets {
        nodes.insert(target.name.clone(), target.tier);
        for g in &target.groups {
            let Some(Spec::SecurityGroup(sg)) = g.address().and_then(|a| groups.get(&a.name).copied()) else { continue };
            for rule in &sg.ingress {
                let sources = match &rule.peer {
                    Peer::Cidr(c) if c == "0.0.0.0/0" || c == "::/0" => vec![(Tier::Internet, "internet".to_string())],
                    Peer::Cidr(c) => vec![(Tier::Other, c.clone())],
                    Peer::PrefixList(p) => vec![(Tier::Other, format!("prefix list {p}"))],
                    Peer::Group(g) => users(g),
                };
                for (tier, source) in sources {
                    nodes.entry(source.clone()).or_insert(tier);
                    let arrow = arrows.entry((source.clone(), target.name.clone())).or_default();
                    arrow.0.insert(rule.traffic());
                    if let Some(why) = unneeded((tier, &source), target, rule) {
                        arrow.1.insert(why);
                    }
                }
            }
        }
    }
    let mut g = Graph::default();
    let mut ordered: Vec<(&String, &Tier)> = nodes.iter().collect();
    ordered.sort_by_key(|(name, tier)| (**tier, name.as_str()));
    g.nodes = ordered.into_iter().map(|(n, _)| (n.clone(), n.clone())).collect();
    let rank = |n: &str| nodes.get(n).copied().unwrap_or(Tier::Other);
    let mut edges: Vec<((String, String), Arrow)> = arrows.into_iter().collect();
    edges.sort_by(|((fa, ta), _), ((fb, tb), _)| (rank(fa), fa, rank(ta), ta).cmp(&(rank(fb), fb, rank(tb), tb)));
    for ((from, to), (ports, why)) in edges {
        let marked = (!why.is_empty()).then(|| why.into_iter().collect::<Vec<_>>().join("; "));
        g.edges.push(Edge { from, to, label: ports.into_iter().collect::<Vec<_>>().join(", "), marked });
    }
    g
}

impl Graph {
    pub fn render(&self, format: GraphFormat) -> String {
        match format {
            GraphFormat::Text => self.text(),
            GraphFormat::Dot => self.dot(),
            GraphFormat::Mermaid => self.mermaid(),
        }
    }

    fn text(&self) -> String {
        let width = self.edges.iter().map(|e| e.from.len()).max().unwrap_or(0);
        let to_width = self.edges.iter().map(|e| e.to.len()).max().unwrap_or(0);
        let mut out = String::new();
        for e in &self.edges {
            let mark = if e.marked.is_some() { "!" } else { " " };
            let line = format!("{mark} {:width$} -> {:to_width$}  {}", e.from, e.to, e.label);
            let _ = writeln!(out, "{}", line.trim_end());
            if let Some(why) = &e.marked {
                let _ = writeln!(out, "    not needed: {why}");
            }
        }
        let lonely: Vec<&str> = self.nodes.iter().map(|(id, _)| id.as_str()).filter(|n| !self.edges.iter().any(|e| e.from == *n || e.to == *n)).collect();
        if !lonely.is_empty() {
            let _ = writeln!(out, "  (no arrow: {})", lonely.join(", "));
        }
        out
    }

    fn dot(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut out = String::from("digraph converge {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
        for (id, label) in &self.nodes {
            let _ = writeln!(out, "  {} [label={}];", quote(id), quote(label));
        }
        for e in &self.edges {
            let mut attrs = Vec::new();
            if !e.label.is_empty() {
                attrs.push(format!("label={}", quote(&e.label)));
            }
            if e.marked.is_some() {
                attrs.push("color=red, fontcolor=red, style=dashed".to_string());
            }
            let attrs = if attrs.is_empty() { String::new() } else { format!(" [{}]", attrs.join(", ")) };
            let _ = writeln!(out, "  {} -> {}{attrs};", quote(&e.from), quote(&e.to));
        }
        out.push_str("}\n");
        out
    }

    fn mermaid(&self) -> String {
        let ids: BTreeMap<&str, String> = self.nodes.iter().enumerate().map(|(i, (id, _))| (id.as_str(), format!("n{i}"))).collect();
        // Mermaid's labels: quoted, without the characters that end them.
        let label = |s: &str| s.replace('"', "'");
        let mut out = String::from("flowchart LR\n");
        for (id, text) in &self.nodes {
            let _ = writeln!(out, "  {}[\"{}\"]", ids[id.as_str()], label(text));
        }
        // linkStyle counts the links written, in order.
        let mut marked = Vec::new();
        let mut written = 0;
        for e in &self.edges {
            let (Some(from), Some(to)) = (ids.get(e.from.as_str()), ids.get(e.to.as_str())) else { continue };
            let arrow = if e.marked.is_some() { "-.->" } else { "-->" };
            let text = if e.label.is_empty() { String::new() } else { format!("|\"{}\"|", label(&e.label)) };
            let _ = writeln!(out, "  {from} {arrow}{text} {to}");
            if e.marked.is_some() {
                marked.push(written.to_string());
            }
            written += 1;
        }
        if !marked.is_empty() {
            let _ = writeln!(out, "  linkStyle {} stroke:#d00,color:#d00", marked.join(","));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{desired_of, live_of, plan_of};

    const TIERS: &str = r#"
[fleet]
name = "agency"
region = "eu-west-1"

[security_group.lb]
ingress = [{ ports = "80", cidr = "0.0.0.0/0" }, { ports = "443", cidr = "0.0.0.0/0" }]
[security_group.web]
ingress = [{ ports = "80", from = "lb" }, { ports = "22", cidr = "10.0.0.0/8" }]
[security_group.db]
ingress = [{ ports = "3306", from = "web" }, { ports = "3306", cidr = "0.0.0.0/0" }]

[load_balancer.shared]
security_groups = ["lb"]
pool = "web"
listeners = [{ port = 80, protocol = "http", instance_port = 80 }, { port = 443, protocol = "https", instance_port = 80, certificate = "arn:aws:iam::123456789012:server-certificate/shared" }]

[pool.web]
image = "nightly"
instance_type = "t3.large"
security_groups = ["web"]
min = 1
max = 2
[image.nightly]
id = "ami-12345678"

[database.sites]
engine = "mysql"
version = "8.0.39"
class = "db.r6g.large"
storage_gb = 20
security_groups = ["db"]
username = "admin"
password_env = "P"
"#;

    #[test]
    fn reachability_marks_the_internet_reaching_the_database() {
        let g = reachability(&desired_of(TIERS));
        insta::assert_snapshot!(g.render(GraphFormat::Text), @r"
          internet             -> load_balancer.shared  tcp 443, tcp 80
        ! internet             -> database.sites        tcp 3306
            not needed: the internet needs to reach only the load balancers
          load_balancer.shared -> pool.web              tcp 80
          pool.web             -> database.sites        tcp 3306
          10.0.0.0/8           -> pool.web              tcp 22
        ");
        insta::assert_snapshot!(g.render(GraphFormat::Mermaid), @r#"
        flowchart LR
          n0["internet"]
          n1["load_balancer.shared"]
          n2["pool.web"]
          n3["database.sites"]
          n4["10.0.0.0/8"]
          n0 -->|"tcp 443, tcp 80"| n1
          n0 -.->|"tcp 3306"| n3
          n1 -->|"tcp 80"| n2
          n2 -->|"tcp 3306"| n3
          n4 -->|"tcp 22"| n2
          linkStyle 1 stroke:#d00,color:#d00
        "#);
    }

    #[test]
    fn the_dependency_graph_and_a_plans_order_as_dot() {
        let desired = desired_of(TIERS);
        let deps = dependencies(&desired);
        assert!(deps.edges.iter().any(|e| e.from == "auto_scaling_group.web" && e.to == "launch_template.web"), "{deps:?}");
        assert!(deps.edges.iter().any(|e| e.from == "db_instance.sites" && e.to == "security_group.db"), "{deps:?}");
        let p = plan_of(TIERS, &crate::live::Live::default());
        insta::assert_snapshot!(plan(&p).render(GraphFormat::Dot));
        // Nothing to change: nothing drawn.
        assert_eq!(plan(&plan_of(TIERS, &live_of(TIERS))).render(GraphFormat::Text), "");
    }
}
