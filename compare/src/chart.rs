//! Hand-written SVG bar chart: one panel per workload, one bar per (implementation, mode) with
//! the median as the bar and the min-max range as a whisker. Latency panels draw p99 as a pale
//! bar behind the p50 bar.

use std::fmt::Write as _;

use crate::report::{num, Results};
use crate::workloads::Workload;

const WIDTH: f64 = 1000.0;
const LABEL_W: f64 = 190.0;
const BAR_X: f64 = LABEL_W + 10.0;
const BAR_MAX_W: f64 = 640.0;
const BAR_H: f64 = 14.0;
const ROW_H: f64 = 19.0;
const TITLE_H: f64 = 44.0;
const PANEL_GAP: f64 = 18.0;

fn color(imp: &str) -> &'static str {
    match imp {
        "braid" => "#1b9e77",
        "braid-tuned" => "#66c2a5",
        "h2" => "#d95f02",
        "h2-tuned" => "#fc8d62",
        "yamux" => "#7570b3",
        "yamux-tuned" => "#a6a1d9",
        "tcp" => "#555555",
        "tcp-nconn" => "#888888",
        _ => "#bbbbbb",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole chart as an SVG document.
pub fn svg(results: &Results) -> String {
    let mut body = String::new();
    let mut y = 40.0;
    for group in &results.groups {
        let w = group.workload;
        let metrics = w.metrics();
        // sessions-idle: the memory after the burst (its target) rather than when set up.
        let p = usize::from(w == Workload::SessionsIdle);
        let primary = metrics[p];
        // Latency workloads: metric 1 is p99, drawn behind p50.
        let behind = metrics.get(1).filter(|m| m.name == "p99").map(|_| 1);
        let summaries = group.summaries();
        let values: Vec<f64> = summaries
            .iter()
            .filter(|s| s.ok > 0)
            .flat_map(|s| {
                let mut v = vec![s.min[p], s.max[p]];
                if let Some(b) = behind {
                    v.push(s.max[b]);
                }
                v
            })
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        let hi = values.iter().copied().fold(0.0_f64, f64::max);
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        // Latencies span microseconds to tens of milliseconds: log scale when the range is wide.
        let log = behind.is_some() && hi / lo > 50.0;
        let floor = if log { lo / 2.0 } else { 0.0 };
        let x_of = move |v: f64| -> f64 {
            if !(v.is_finite() && hi > 0.0) {
                0.0
            } else if log {
                (v.max(floor) / floor).log10() / (hi / floor).log10() * BAR_MAX_W
            } else {
                v / hi * BAR_MAX_W
            }
        };
        let dir = if primary.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let what = match behind {
            Some(_) => format!("p50 (dark) and p99 (pale) {}", primary.unit),
            None => format!("{} {}", primary.name, primary.unit),
        } + if log { ", log scale" } else { "" };
        let _ = writeln!(
            body,
            r##"<text x="10" y="{:.0}" font-size="15" font-weight="bold">{}</text><text x="10" y="{:.0}" font-size="11" fill="#444">{} - median, whisker min-max; {}</text>"##,
            y + 16.0,
            esc(w.name()),
            y + 32.0,
            esc(&what),
            dir
        );
        y += TITLE_H;
        for (row, s) in group.rows.iter().zip(&summaries) {
            // Implementations not built in get no bar (the tables list them).
            if s.ok == 0 && s.status.starts_with("n/a") {
                continue;
            }
            let c = color(&row.imp);
            let opacity = if row.mode.name() == "split" { 1.0 } else { 0.6 };
            let _ = writeln!(
                body,
                r#"<text x="{:.0}" y="{:.1}" font-size="11" text-anchor="end">{} · {}</text>"#,
                LABEL_W,
                y + BAR_H - 3.0,
                esc(&row.imp),
                row.mode.name()
            );
            if s.ok == 0 {
                let _ = writeln!(
                    body,
                    r##"<text x="{BAR_X:.0}" y="{:.1}" font-size="11" fill="#a00">{}</text>"##,
                    y + BAR_H - 3.0,
                    esc(&s.status.chars().take(110).collect::<String>())
                );
                y += ROW_H;
                continue;
            }
            if let Some(b) = behind {
                let _ = writeln!(
                    body,
                    r#"<rect x="{BAR_X:.0}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="{c}" opacity="{:.2}"/>"#,
                    x_of(s.median[b]),
                    opacity * 0.35
                );
            }
            let bar = x_of(s.median[p]);
            let _ = writeln!(
                body,
                r#"<rect x="{BAR_X:.0}" y="{y:.1}" width="{bar:.1}" height="{BAR_H}" fill="{c}" opacity="{opacity:.2}"/>"#
            );
            let (lo, hi) = (BAR_X + x_of(s.min[p]), BAR_X + x_of(s.max[p]));
            let mid = y + BAR_H / 2.0;
            let _ = writeln!(
                body,
                r##"<path d="M{lo:.1},{mid:.1}H{hi:.1}M{lo:.1},{:.1}V{:.1}M{hi:.1},{:.1}V{:.1}" stroke="#000" stroke-width="1" fill="none"/>"##,
                mid - 3.0,
                mid + 3.0,
                mid - 3.0,
                mid + 3.0
            );
            let mut label = num(s.median[p]);
            if let Some(b) = behind {
                label = format!("{label} / {}", num(s.median[b]));
            }
            let end = behind.map_or(bar, |b| x_of(s.median[b]).max(bar));
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                BAR_X + end.max(hi - BAR_X) + 6.0,
                y + BAR_H - 3.0,
                esc(&label)
            );
            y += ROW_H;
        }
        y += PANEL_GAP;
    }
    let title = format!(
        "braid compare ({:?}, {} rounds); split = separate single-threaded runtimes, shared = one 2-worker runtime (pale)",
        results.preset, results.rounds
    );
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{:.0}" viewBox="0 0 {WIDTH} {:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="22" font-size="13">{}</text>
{body}</svg>
"##,
        y + 10.0,
        y + 10.0,
        esc(&title)
    )
}
