//! `bookstore graph`: the stack's architecture drawn from its plan, never by hand. The plan gives
//! the groups (the VPC; inside it one box per security group with what it guards, and the
//! network's plumbing; outside it the bake and the account's stores), the traffic (each security
//! group's ingress rule is an arrow: from the internet, or from the members of the group it names,
//! with its ports) and the dependencies (dashed: what boots from, registers in or reads what).
//! One model, three printers: Graphviz DOT, Mermaid, and SVG drawn here (no Graphviz needed).

mod dot;
mod mermaid;
mod svg;

use std::collections::BTreeMap;

use crate::aws::{Drawing, Place};
use crate::plan::{Desired, Kind, Plan, SecurityGroupSpec, Spec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Svg,
    Dot,
    Mermaid,
}

pub fn render(plan: &Plan, format: Format) -> String {
    let graph = Graph::of(plan);
    match format {
        Format::Svg => svg::render(&graph),
        Format::Dot => dot::render(&graph),
        Format::Mermaid => mermaid::render(&graph),
    }
}

/// A box that holds nodes (and, for the VPC, other groups).
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub label: String,
    pub parent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub title: String,
    pub detail: String,
    pub group: Option<String>,
}

/// An edge's end may be a whole group (`group:<id>`): traffic to every node of a security group,
/// or what all of them depend on.
pub fn as_group(end: &str) -> Option<&str> {
    end.strip_prefix("group:")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: String,
    /// Network traffic a security group admits (solid); else a dependency (dashed).
    pub traffic: bool,
}

/// A step of `Graph::walk`.
pub enum Visit<'a> {
    Open(&'a Group),
    Node(&'a Node),
    Close,
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub title: String,
    pub groups: Vec<Group>,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

pub const INTERNET: &str = "internet";
const NETWORK: &str = "network";
const BAKE: &str = "bake";
const STORES: &str = "stores";

/// A stable id: the image's key carries the app's hash, which would make every picture stale.
fn id(d: &Desired) -> String {
    match d.kind {
        Kind::Image => "ami".into(),
        _ => d.key.clone(),
    }
}

/// How each planned resource is drawn, as its kind says.
fn drawings(plan: &Plan) -> BTreeMap<&str, Drawing> {
    plan.resources
        .iter()
        .filter_map(|d| Some((d.key.as_str(), d.kind.imp().drawing(&d.spec)?)))
        .collect()
}

impl Graph {
    pub fn of(plan: &Plan) -> Graph {
        let by_key: BTreeMap<&str, &Desired> =
            plan.resources.iter().map(|d| (d.key.as_str(), d)).collect();
        let drawn = drawings(plan);
        let place = |key: &str| drawn.get(key).map(|d| &d.place);
        let detail = |d: &Desired| {
            drawn
                .get(d.key.as_str())
                .map(|d| d.detail.clone())
                .unwrap_or_default()
        };
        // Boxes drawn around others, and the network's plumbing: no node, or no arrow to it.
        let is_container = |d: &Desired| place(&d.key) == Some(&Place::Container);
        let is_plumbing =
            |d: &Desired| matches!(place(&d.key), Some(Place::Container | Place::Network));
        let mut groups = Vec::new();
        let vpc = plan.resources.iter().find(|d| d.kind == Kind::Vpc);
        if let Some(v) = vpc {
            groups.push(Group {
                id: v.key.clone(),
                label: detail(v),
                parent: None,
            });
        }
        let vpc_key = vpc.map(|v| v.key.clone());
        for d in plan
            .resources
            .iter()
            .filter(|d| d.kind == Kind::SecurityGroup)
        {
            groups.push(Group {
                id: d.key.clone(),
                label: format!("security group {}", d.key),
                parent: vpc_key.clone(),
            });
        }
        groups.push(Group {
            id: NETWORK.into(),
            label: "network".into(),
            parent: vpc_key.clone(),
        });
        groups.push(Group {
            id: BAKE.into(),
            label: "bake (once per app build)".into(),
            parent: None,
        });
        groups.push(Group {
            id: STORES.into(),
            label: "account stores".into(),
            parent: None,
        });

        // Where each resource goes: its own security group, else the one of what it belongs to.
        let mut group_of: BTreeMap<String, String> = BTreeMap::new();
        for d in &plan.resources {
            if let Some(Place::Group(g)) = place(&d.key) {
                group_of.insert(d.key.clone(), g.to_string());
            }
        }
        let follow = |d: &Desired| -> Option<String> {
            match place(&d.key)? {
                Place::With(r) => Some(r.to_string()),
                Place::ReferredBy(kinds) => kinds.iter().find_map(|kind| {
                    plan.resources
                        .iter()
                        .find(|o| o.kind == *kind && o.depends_on.contains(&d.key))
                        .map(|o| o.key.clone())
                }),
                _ => None,
            }
        };
        // Chains (a target group → its listener → the load balancer) settle in a few rounds.
        for _ in 0..4 {
            for d in &plan.resources {
                if group_of.contains_key(&d.key) {
                    continue;
                }
                if let Some(g) = follow(d).and_then(|k| group_of.get(&k).cloned()) {
                    group_of.insert(d.key.clone(), g);
                }
            }
        }

        let mut nodes = vec![Node {
            id: INTERNET.into(),
            title: "internet".into(),
            detail: "users' browsers".into(),
            group: None,
        }];
        for d in plan.resources.iter().filter(|d| !is_container(d)) {
            let group = match place(&d.key) {
                Some(Place::Network) => Some(NETWORK.into()),
                Some(Place::Bake) => Some(BAKE.into()),
                Some(Place::Stores) => Some(STORES.into()),
                _ => group_of.get(&d.key).cloned().or(Some(STORES.into())),
            };
            nodes.push(Node {
                id: id(d),
                title: if d.kind == Kind::Image {
                    "ami".into()
                } else {
                    d.key.clone()
                },
                detail: detail(d),
                group,
            });
        }

        let mut edges: Vec<Edge> = Vec::new();
        // Traffic: each ingress rule, from the internet or from the members of a group.
        let entry = |g: &str| -> Option<String> {
            // The member that receives traffic: the load balancer, the compute, then the rest.
            let rank = |k: Kind| match k {
                Kind::LoadBalancer => 0,
                Kind::AutoScalingGroup | Kind::NodeGroup => 1,
                Kind::Instance => 2,
                Kind::Database => 3,
                Kind::FileSystem => 4,
                _ => 9,
            };
            let members: Vec<&Desired> = plan
                .resources
                .iter()
                .filter(|d| !is_container(d) && group_of.get(&d.key).is_some_and(|o| o == g))
                .collect();
            // Several machines behind one rule (the swarm's nodes): the arrow goes to them all.
            if members.iter().filter(|d| d.kind == Kind::Instance).count() > 1 {
                return Some(format!("group:{g}"));
            }
            members.into_iter().min_by_key(|d| rank(d.kind)).map(id)
        };
        for d in &plan.resources {
            let Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) = &d.spec else {
                continue;
            };
            let Some(to) = entry(&d.key) else { continue };
            for rule in ingress {
                let from = match &rule.from_group {
                    None => Some(INTERNET.to_string()),
                    Some(g) if *g == d.key => None, // members among themselves: said in the label
                    Some(g) => entry(g),
                };
                match from {
                    Some(from) => {
                        add_traffic(&mut edges, &from, &to, rule.protocol.as_str(), rule.port)
                    }
                    None => {
                        if let Some(g) = groups.iter_mut().find(|g| g.id == d.key)
                            && !g.label.contains("among members")
                        {
                            g.label.push_str(" (+ among members)");
                        }
                    }
                }
            }
        }
        // Dependencies that say how the parts work together.
        let node_group: BTreeMap<String, String> = nodes
            .iter()
            .filter_map(|n| Some((n.id.clone(), n.group.clone()?)))
            .collect();
        let group_of_end = |end: &str| -> Option<String> {
            as_group(end)
                .map(str::to_string)
                .or_else(|| node_group.get(end).cloned())
        };
        let traffic = edges.clone();
        // Said already by a traffic arrow between the two groups (the app's user-data names the
        // database it connects to), or inside one of the stack's plain boxes.
        let said = |a: &str, b: &str| {
            let (ga, gb) = (group_of_end(a), group_of_end(b));
            ga != gb
                && traffic.iter().any(|e| {
                    let (f, t) = (group_of_end(&e.from), group_of_end(&e.to));
                    (f == ga && t == gb) || (f == gb && t == ga)
                })
        };
        let mut deps: Vec<Edge> = Vec::new();
        for d in plan.resources.iter().filter(|d| !is_container(d)) {
            for dep in &d.depends_on {
                let Some(t) = by_key.get(dep.as_str()) else {
                    continue;
                };
                // Ordering only: a subnet group, mount targets before the instances boot.
                if is_plumbing(t) || matches!(t.kind, Kind::DbSubnetGroup | Kind::MountTarget) {
                    continue;
                }
                let (from, to) = (id(d), id(t));
                if !said(&from, &to) {
                    deps.push(Edge {
                        from,
                        to,
                        label: String::new(),
                        traffic: false,
                    });
                }
            }
        }
        // Several machines of one security group on one end (the swarm's nodes): one arrow for
        // the group.
        let machines: Vec<String> = plan
            .resources
            .iter()
            .filter(|d| d.kind == Kind::Instance)
            .map(id)
            .collect();
        let sg = |end: &str| {
            if !machines.iter().any(|m| m == end) {
                return None;
            }
            group_of_end(end)
        };
        let shared = |e: &Edge, from_side: bool| {
            let mine = if from_side { &e.from } else { &e.to };
            let g = sg(mine)?;
            let n = deps
                .iter()
                .filter(|o| {
                    let (me, other, o_me, o_other) = if from_side {
                        (&e.from, &e.to, &o.from, &o.to)
                    } else {
                        (&e.to, &e.from, &o.to, &o.from)
                    };
                    o_other == other && o_me != me && sg(o_me).as_ref() == Some(&g)
                })
                .count();
            (n > 0).then(|| format!("group:{g}"))
        };
        for e in deps.clone() {
            let from = shared(&e, true).unwrap_or_else(|| e.from.clone());
            let to = shared(&e, false).unwrap_or_else(|| e.to.clone());
            if from == to || edges.iter().any(|x| x.from == from && x.to == to) {
                continue;
            }
            edges.push(Edge { from, to, ..e });
        }
        Graph {
            title: format!("bookstore stack `{}`", plan.stack),
            groups,
            nodes,
            edges,
        }
    }

    /// Depth first, as the nested printers write it: the nodes outside any group, then each
    /// top-level group: `Open`, its nodes, its groups, `Close`. The depth counts from 1.
    pub fn walk(&self, visit: &mut impl FnMut(Visit<'_>, usize)) {
        for n in self.nodes.iter().filter(|n| n.group.is_none()) {
            visit(Visit::Node(n), 1);
        }
        let used = self.used_groups();
        for g in used.iter().filter(|g| g.parent.is_none()) {
            self.walk_group(g, &used, 1, visit);
        }
    }

    fn walk_group(
        &self,
        group: &Group,
        used: &[&Group],
        depth: usize,
        visit: &mut impl FnMut(Visit<'_>, usize),
    ) {
        visit(Visit::Open(group), depth);
        for n in self
            .nodes
            .iter()
            .filter(|n| n.group.as_deref() == Some(&group.id))
        {
            visit(Visit::Node(n), depth + 1);
        }
        for child in used
            .iter()
            .filter(|c| c.parent.as_deref() == Some(&group.id))
        {
            self.walk_group(child, used, depth + 1, visit);
        }
        visit(Visit::Close, depth);
    }

    /// The groups that hold nodes (or groups that do), in their order.
    pub fn used_groups(&self) -> Vec<&Group> {
        let holds = |g: &Group| {
            self.nodes.iter().any(|n| n.group.as_deref() == Some(&g.id))
                || self.groups.iter().any(|c| {
                    c.parent.as_deref() == Some(&g.id)
                        && self.nodes.iter().any(|n| n.group.as_deref() == Some(&c.id))
                })
        };
        self.groups.iter().filter(|g| holds(g)).collect()
    }
}

/// One arrow per pair, its label the ports: `tcp 80, 443`.
fn add_traffic(edges: &mut Vec<Edge>, from: &str, to: &str, protocol: &str, port: u16) {
    if let Some(e) = edges
        .iter_mut()
        .find(|e| e.traffic && e.from == from && e.to == to)
    {
        let port = port.to_string();
        if !e.label.split([' ', ',']).any(|p| p == port) {
            if e.label.starts_with(protocol) {
                e.label.push_str(&format!(", {port}"));
            } else {
                e.label.push_str(&format!("; {protocol} {port}"));
            }
        }
        return;
    }
    edges.push(Edge {
        from: from.into(),
        to: to.into(),
        label: format!("{protocol} {port}"),
        traffic: true,
    });
}
