//! SVG drawn here, with a layout made for these pictures: the internet on the left; the VPC with
//! one column per step of the traffic (each security group's box in the column of its distance
//! from the internet), the network's plumbing along its bottom; the bake and the account's
//! stores on the right. Traffic arrows are solid with their ports; dependencies dashed.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Graph, INTERNET, as_group};

const NODE_W: f64 = 250.0;
const NODE_H: f64 = 40.0;
const GAP: f64 = 10.0;
const PAD: f64 = 12.0;
const HEADER: f64 = 22.0;
const GROUP_W: f64 = NODE_W + 2.0 * PAD;
const COLUMN_GAP: f64 = 70.0;

#[derive(Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Lays `ids` out in a box at (x, y): one column of nodes, or rows of `per_row`.
fn place(
    ids: &[String],
    x: f64,
    y: f64,
    per_row: usize,
    at: &mut BTreeMap<String, Rect>,
) -> (f64, f64) {
    let per_row = per_row.max(1);
    let rows = ids.len().div_ceil(per_row).max(1);
    for (i, id) in ids.iter().enumerate() {
        let (r, c) = (i / per_row, i % per_row);
        at.insert(
            id.clone(),
            Rect {
                x: x + PAD + c as f64 * (NODE_W + GAP),
                y: y + HEADER + r as f64 * (NODE_H + GAP),
                w: NODE_W,
                h: NODE_H,
            },
        );
    }
    let cols = per_row.min(ids.len()).max(1);
    (
        2.0 * PAD + cols as f64 * NODE_W + (cols - 1) as f64 * GAP,
        HEADER + rows as f64 * (NODE_H + GAP) + PAD - GAP,
    )
}

pub fn render(g: &Graph) -> String {
    let members = |group: &str| -> Vec<String> {
        g.nodes
            .iter()
            .filter(|n| n.group.as_deref() == Some(group))
            .map(|n| n.id.clone())
            .collect()
    };
    let used = g.used_groups();
    let vpc = used
        .iter()
        .find(|gr| gr.parent.is_none() && used.iter().any(|c| c.parent.as_deref() == Some(&gr.id)));
    let group_of: BTreeMap<&str, &str> = g
        .nodes
        .iter()
        .filter_map(|n| Some((n.id.as_str(), n.group.as_deref()?)))
        .collect();

    // Each security group's column: its distance from the internet along the traffic.
    let mut column: BTreeMap<String, usize> = BTreeMap::new();
    let mut frontier = vec![(INTERNET.to_string(), 0usize)];
    while let Some((at, depth)) = frontier.pop() {
        for e in g.edges.iter().filter(|e| e.traffic && e.from == at) {
            let Some(group) = as_group(&e.to).or_else(|| group_of.get(e.to.as_str()).copied())
            else {
                continue;
            };
            if column.get(group).is_none_or(|c| *c > depth) {
                column.insert(group.to_string(), depth);
                frontier.push((e.to.clone(), depth + 1));
            }
        }
    }
    let inner: Vec<&&super::Group> = used
        .iter()
        .filter(|gr| vpc.is_some_and(|v| gr.parent.as_deref() == Some(&v.id)) && gr.id != "network")
        .collect();
    let last = column.values().copied().max().unwrap_or(0);
    for gr in &inner {
        column.entry(gr.id.clone()).or_insert(last + 1);
    }
    let columns = inner.iter().map(|gr| column[&gr.id] + 1).max().unwrap_or(1);

    let mut at: BTreeMap<String, Rect> = BTreeMap::new();
    let mut boxes: Vec<(Rect, String, bool)> = Vec::new(); // (rect, label, is the VPC)
    let top = 56.0;
    let vpc_x = 20.0 + 120.0 + 90.0;
    let inner_x = vpc_x + 16.0;
    let inner_top = top + 30.0;
    let mut bottom: f64 = inner_top;
    for c in 0..columns {
        let mut y = inner_top;
        let x = inner_x + c as f64 * (GROUP_W + COLUMN_GAP);
        for gr in inner.iter().filter(|gr| column[&gr.id] == c) {
            let (w, h) = place(&members(&gr.id), x, y, 1, &mut at);
            boxes.push((Rect { x, y, w, h }, gr.label.clone(), false));
            at.insert(format!("group:{}", gr.id), Rect { x, y, w, h });
            y += h + 18.0;
        }
        bottom = bottom.max(y);
    }
    let vpc_inner_w = columns as f64 * GROUP_W + (columns - 1) as f64 * COLUMN_GAP;
    let mut vpc_bottom = bottom;
    if let Some(net) = used.iter().find(|gr| gr.id == "network") {
        let per_row = ((vpc_inner_w - 2.0 * PAD + GAP) / (NODE_W + GAP)).floor() as usize;
        let (w, h) = place(&members(&net.id), inner_x, bottom, per_row, &mut at);
        boxes.push((
            Rect {
                x: inner_x,
                y: bottom,
                w,
                h,
            },
            net.label.clone(),
            false,
        ));
        vpc_bottom = bottom + h + 18.0;
    }
    let vpc_w = vpc_inner_w.max(GROUP_W) + 32.0;
    if let Some(v) = vpc {
        boxes.insert(
            0,
            (
                Rect {
                    x: vpc_x,
                    y: top,
                    w: vpc_w,
                    h: vpc_bottom - top,
                },
                v.label.clone(),
                true,
            ),
        );
    }
    // Outside the VPC, on the right: the bake and the account's stores.
    let right_x = vpc_x + vpc_w + COLUMN_GAP;
    let mut y = top;
    for gr in used
        .iter()
        .filter(|gr| gr.parent.is_none() && vpc.is_none_or(|v| v.id != gr.id))
    {
        let (w, h) = place(&members(&gr.id), right_x, y, 1, &mut at);
        boxes.push((
            Rect {
                x: right_x,
                y,
                w,
                h,
            },
            gr.label.clone(),
            false,
        ));
        at.insert(
            format!("group:{}", gr.id),
            Rect {
                x: right_x,
                y,
                w,
                h,
            },
        );
        y += h + 18.0;
    }
    // The internet, level with the first thing it reaches.
    let internet_y = g
        .edges
        .iter()
        .find(|e| e.traffic && e.from == INTERNET)
        .and_then(|e| at.get(&e.to))
        .map_or(inner_top + HEADER, |r| r.y);
    at.insert(
        INTERNET.into(),
        Rect {
            x: 20.0,
            y: internet_y,
            w: 120.0,
            h: NODE_H,
        },
    );
    let width = right_x + GROUP_W + 60.0;
    let height = boxes
        .iter()
        .map(|(r, _, _)| r.y + r.h)
        .fold(vpc_bottom, f64::max)
        + 20.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(out, "<title>{}</title>", esc(&g.title));
    let _ = writeln!(
        out,
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker><marker id="dep" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker></defs>"##
    );
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = writeln!(
        out,
        r##"<text x="20" y="30" font-size="16" font-weight="bold" fill="#222">{}</text>"##,
        esc(&g.title)
    );
    for (r, label, is_vpc) in &boxes {
        let (fill, stroke, dash) = if *is_vpc {
            ("#f3f8ff", "#3b73b9", "")
        } else {
            ("#fbfbfb", "#9a9a9a", r#" stroke-dasharray="5 3""#)
        };
        let _ = writeln!(
            out,
            r##"<rect x="{:.0}" y="{:.0}" width="{:.0}" height="{:.0}" rx="8" fill="{fill}" stroke="{stroke}"{dash}/><text x="{:.0}" y="{:.0}" font-size="11" fill="#555">{}</text>"##,
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + 10.0,
            r.y + 15.0,
            esc(label)
        );
    }
    for n in &g.nodes {
        let Some(r) = at.get(&n.id) else { continue };
        let fill = if n.id == INTERNET {
            "#fff4e0"
        } else {
            "#ffffff"
        };
        let _ = writeln!(
            out,
            r##"<g><rect x="{:.0}" y="{:.0}" width="{:.0}" height="{:.0}" rx="6" fill="{fill}" stroke="#444"/><text x="{:.0}" y="{:.0}" font-size="12" font-weight="bold" fill="#111">{}</text><text x="{:.0}" y="{:.0}" font-size="10" fill="#444">{}</text></g>"##,
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + 8.0,
            r.y + 16.0,
            esc(&n.title),
            r.x + 8.0,
            r.y + 31.0,
            esc(&n.detail)
        );
    }
    for e in &g.edges {
        let (Some(a), Some(b)) = (at.get(&e.from), at.get(&e.to)) else {
            continue;
        };
        let (x1, y1, x2, y2, bend);
        if b.x > a.x + a.w {
            (x1, y1, x2, y2) = (a.x + a.w, a.y + a.h / 2.0, b.x, b.y + b.h / 2.0);
            bend = (x2 - x1) / 2.0;
        } else if b.x + b.w < a.x {
            (x1, y1, x2, y2) = (a.x, a.y + a.h / 2.0, b.x + b.w, b.y + b.h / 2.0);
            bend = (x2 - x1) / 2.0;
        } else {
            // Same column: out of the right side and back in.
            (x1, y1, x2, y2) = (a.x + a.w, a.y + a.h / 2.0, b.x + b.w, b.y + b.h / 2.0);
            bend = 30.0 + (y2 - y1).abs() / 8.0;
        }
        let (c1, c2) = if (x2 - x1).abs() < 1.0 || (b.x <= a.x + a.w && b.x + b.w >= a.x) {
            (x1 + bend, x2 + bend)
        } else {
            (x1 + bend, x2 - bend)
        };
        let style = if e.traffic {
            r##"stroke="#333" stroke-width="2" marker-end="url(#arrow)""##
        } else {
            r##"stroke="#999" stroke-width="1" stroke-dasharray="4 3" marker-end="url(#dep)""##
        };
        let _ = writeln!(
            out,
            r#"<path d="M{x1:.0},{y1:.0} C{c1:.0},{y1:.0} {c2:.0},{y2:.0} {x2:.0},{y2:.0}" fill="none" {style}/>"#
        );
        if !e.label.is_empty() {
            let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0 - 6.0);
            let w = e.label.len() as f64 * 5.6 + 8.0;
            let _ = writeln!(
                out,
                r##"<rect x="{:.0}" y="{:.0}" width="{w:.0}" height="14" rx="3" fill="#fff" stroke="#ccc"/><text x="{mx:.0}" y="{:.0}" font-size="10" text-anchor="middle" fill="#222">{}</text>"##,
                mx - w / 2.0,
                my - 10.0,
                my,
                esc(&e.label)
            );
        }
    }
    let _ = writeln!(out, "</svg>");
    out
}
