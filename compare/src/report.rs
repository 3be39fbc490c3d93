//! Results: statistics over rounds, the text tables, and the JSON and CSV files.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::child::{Mode, Outcome};
use crate::workloads::{Preset, Workload};

/// Everything measured in one run of the command.
#[derive(Debug)]
pub struct Results {
    /// Preset.
    pub preset: Preset,
    /// Rounds asked for.
    pub rounds: usize,
    /// (implementation, settings) in report order.
    pub impls: Vec<(String, String)>,
    /// One group per workload, in run order.
    pub groups: Vec<Group>,
}

/// The rows of one workload.
#[derive(Debug)]
pub struct Group {
    /// Workload.
    pub workload: Workload,
    /// What was run, with sizes.
    pub description: String,
    /// One row per (implementation, mode).
    pub rows: Vec<Row>,
}

/// Every round of one (implementation, mode).
#[derive(Debug)]
pub struct Row {
    /// Implementation name.
    pub imp: String,
    /// Runtime mode.
    pub mode: Mode,
    /// One outcome per round run.
    pub outcomes: Vec<Outcome>,
}

impl Row {
    /// Whether later rounds are pointless: the last run timed out, failed or was not available.
    pub fn given_up(&self) -> bool {
        matches!(self.outcomes.last(), Some(o) if !matches!(o, Outcome::Ok(_)))
    }
}

/// Statistics of one row.
#[derive(Debug, Clone)]
pub struct Summary {
    /// "ok", "ok 2/3", "timeout", "error: ...", "n/a: ...".
    pub status: String,
    /// Rounds that produced numbers.
    pub ok: usize,
    /// Per metric: median, min, max over the successful rounds.
    pub median: Vec<f64>,
    /// Minimum per metric.
    pub min: Vec<f64>,
    /// Maximum per metric.
    pub max: Vec<f64>,
    /// Median CPU seconds per unit of work.
    pub cpu: f64,
    /// Per metric: median / median of the TCP baseline of the same mode.
    pub vs_base: Vec<Option<f64>>,
    /// Per metric: median / median of `h2` in the same mode.
    pub vs_h2: Vec<Option<f64>>,
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn failure(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Ok(_) => None,
        Outcome::Timeout => Some("timeout".into()),
        Outcome::Error(e) => Some(format!("error: {e}")),
        Outcome::Unavailable(why) => Some(format!("n/a: {why}")),
    }
}

/// The baseline of a workload: TCP (`tcp` or `tcp-nconn`), or `tonic` for the RPC workloads.
pub fn baseline(workload: Workload) -> &'static str {
    if workload.is_rpc() {
        crate::rpc::TONIC
    } else if workload.multi_stream() {
        "tcp-nconn"
    } else {
        "tcp"
    }
}

impl Group {
    /// Summaries of every row, in row order.
    pub fn summaries(&self) -> Vec<Summary> {
        let metrics = self.workload.metrics().len();
        let mut out: Vec<Summary> = self
            .rows
            .iter()
            .map(|row| {
                let samples: Vec<_> = row
                    .outcomes
                    .iter()
                    .filter_map(|o| match o {
                        Outcome::Ok(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                let column = |i: usize| -> Vec<f64> {
                    samples
                        .iter()
                        .map(|s| s.metrics.get(i).copied().unwrap_or(f64::NAN))
                        .collect()
                };
                let first_failure = row.outcomes.iter().find_map(failure);
                let status = match (samples.len(), first_failure) {
                    (_, None) => "ok".to_string(),
                    (0, Some(f)) => f,
                    (n, Some(f)) => format!("ok {n}/{} ({f})", row.outcomes.len()),
                };
                let fold = |i: usize, pick: fn(f64, f64) -> f64| {
                    column(i).into_iter().reduce(pick).unwrap_or(f64::NAN)
                };
                Summary {
                    status,
                    ok: samples.len(),
                    median: (0..metrics).map(|i| median(&column(i))).collect(),
                    min: (0..metrics).map(|i| fold(i, f64::min)).collect(),
                    max: (0..metrics).map(|i| fold(i, f64::max)).collect(),
                    cpu: median(&samples.iter().map(|s| s.cpu_per_unit).collect::<Vec<_>>()),
                    vs_base: vec![None; metrics],
                    vs_h2: vec![None; metrics],
                }
            })
            .collect();
        let find = |name: &str, mode: Mode| {
            self.rows
                .iter()
                .position(|r| r.imp == name && r.mode == mode)
                .filter(|&i| out[i].ok > 0)
                .map(|i| out[i].median.clone())
        };
        let ratios: Vec<_> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let ratio = |reference: Option<Vec<f64>>| -> Vec<Option<f64>> {
                    (0..metrics)
                        .map(|m| {
                            let r = reference.as_ref()?[m];
                            (out[i].ok > 0 && r > 0.0).then(|| out[i].median[m] / r)
                        })
                        .collect()
                };
                (
                    ratio(find(baseline(self.workload), row.mode)),
                    ratio(find("h2", row.mode)),
                )
            })
            .collect();
        for (summary, (vs_base, vs_h2)) in out.iter_mut().zip(ratios) {
            summary.vs_base = vs_base;
            summary.vs_h2 = vs_h2;
        }
        out
    }
}

/// A number with about four significant digits, no exponent.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn ratio_text(ratios: &[Option<f64>], headline: &[bool]) -> String {
    let parts: Vec<String> = ratios
        .iter()
        .zip(headline)
        .filter(|(_, &h)| h)
        .map(|(r, _)| r.map_or("-".into(), |r| format!("{r:.2}x")))
        .collect();
    parts.join("/")
}

/// The text table of one workload.
pub fn table(group: &Group) -> String {
    let w = group.workload;
    let metrics = w.metrics();
    let headline: Vec<bool> = metrics.iter().map(|m| m.headline).collect();
    let base = baseline(w);
    let mut head = vec!["impl".to_string(), "mode".to_string()];
    for m in metrics {
        head.push(format!("{} {} median [min-max]", m.name, m.unit));
    }
    head.push(w.cpu_unit().label().to_string());
    let names: Vec<&str> = metrics
        .iter()
        .filter(|m| m.headline)
        .map(|m| m.name)
        .collect();
    let suffix = if names.len() > 1 {
        format!(" ({})", names.join("/"))
    } else {
        String::new()
    };
    head.push(format!("vs {base}{suffix}"));
    // The RPC workloads have no h2 row: tonic (gRPC over h2) is their baseline.
    let vs_h2 = !w.is_rpc();
    if vs_h2 {
        head.push(format!("vs h2{suffix}"));
    }
    let mut rows = vec![head];
    for (row, s) in group.rows.iter().zip(group.summaries()) {
        let mut cells = vec![row.imp.clone(), row.mode.name().to_string()];
        if s.ok == 0 {
            // Printed after the first two columns, outside the width computation.
            cells.push(s.status.clone());
        } else {
            for m in 0..metrics.len() {
                cells.push(format!(
                    "{} [{}-{}]",
                    num(s.median[m]),
                    num(s.min[m]),
                    num(s.max[m])
                ));
            }
            cells.push(num(s.cpu));
            cells.push(ratio_text(&s.vs_base, &headline));
            if vs_h2 {
                cells.push(ratio_text(&s.vs_h2, &headline));
            }
            if s.status != "ok" {
                let last = cells.len() - 1;
                cells[last] = format!("{}  {}", cells[last], s.status);
            }
        }
        rows.push(cells);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter(|r| r.len() == columns || c < 2)
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let directions: Vec<String> = metrics
        .iter()
        .map(|m| {
            let dir = if m.higher_is_better {
                "higher"
            } else {
                "lower"
            };
            format!("{} {}: {dir} is better", m.name, m.unit)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "\n== {} == {}", w.name(), group.description);
    let against = if vs_h2 {
        format!("{base} and h2")
    } else {
        base.to_string()
    };
    let _ = writeln!(
        out,
        "   {}; ratios are median/median against {against} in the same mode",
        directions.join("; ")
    );
    for (i, cells) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in cells.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c < 2 || cells.len() < columns {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (columns - 1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    out
}

fn opt(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// All results as one JSON document.
pub fn to_json(results: &Results) -> Value {
    let groups: Vec<Value> = results
        .groups
        .iter()
        .map(|g| {
            let w = g.workload;
            let rows: Vec<Value> = g
                .rows
                .iter()
                .zip(g.summaries())
                .map(|(row, s)| {
                    json!({
                        "impl": row.imp,
                        "mode": row.mode.name(),
                        "status": s.status,
                        "runs_ok": s.ok,
                        "runs": row.outcomes,
                        "median": s.median.iter().map(|&x| opt(x)).collect::<Vec<_>>(),
                        "min": s.min.iter().map(|&x| opt(x)).collect::<Vec<_>>(),
                        "max": s.max.iter().map(|&x| opt(x)).collect::<Vec<_>>(),
                        "cpu_per_unit_median": opt(s.cpu),
                        "vs_baseline": s.vs_base,
                        "vs_h2": s.vs_h2,
                    })
                })
                .collect();
            json!({
                "workload": w.name(),
                "description": g.description,
                "multi_stream": w.multi_stream(),
                "baseline": baseline(w),
                "metrics": w.metrics().iter().map(|m| json!({
                    "name": m.name, "unit": m.unit, "higher_is_better": m.higher_is_better,
                })).collect::<Vec<_>>(),
                "cpu_unit": w.cpu_unit().label(),
                "rows": rows,
            })
        })
        .collect();
    json!({
        "preset": results.preset,
        "rounds": results.rounds,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "implementations": results.impls.iter().map(|(name, settings)| json!({
            "name": name, "settings": settings,
        })).collect::<Vec<_>>(),
        "workloads": groups,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_num(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => String::new(),
    }
}

/// One CSV line per (workload, implementation, mode, metric).
pub fn to_csv(results: &Results) -> String {
    let mut out = String::from(
        "workload,impl,mode,metric,unit,higher_is_better,median,min,max,runs_ok,runs,\
         cpu_per_unit,cpu_unit,baseline,vs_baseline,vs_h2,status\n",
    );
    for g in &results.groups {
        let w = g.workload;
        for (row, s) in g.rows.iter().zip(g.summaries()) {
            for (m, metric) in w.metrics().iter().enumerate() {
                let fields = [
                    w.name().to_string(),
                    row.imp.clone(),
                    row.mode.name().to_string(),
                    metric.name.to_string(),
                    metric.unit.to_string(),
                    metric.higher_is_better.to_string(),
                    csv_num(Some(s.median[m])),
                    csv_num(Some(s.min[m])),
                    csv_num(Some(s.max[m])),
                    s.ok.to_string(),
                    row.outcomes.len().to_string(),
                    csv_num(Some(s.cpu)),
                    w.cpu_unit().label().to_string(),
                    baseline(w).to_string(),
                    csv_num(s.vs_base[m]),
                    csv_num(s.vs_h2[m]),
                    s.status.clone(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("x\"y"), "\"x\"\"y\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
