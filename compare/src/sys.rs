//! Process measurements read from `/proc` (Linux only, no `libc`).

use std::fs;

/// Clock ticks per second of `/proc/*/stat` times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// user + system CPU seconds from a `/proc/.../stat` file (fields 14 and 15).
fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let text = fs::read_to_string(path).ok()?;
    // Field 2 (comm) is in parentheses and may contain spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state), so utime (14) is the 12th entry and stime (15) the 13th.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS)
}

/// Nanosecond CPU time (user + sys) of one task from its `schedstat` (first field).
fn schedstat_seconds(path: &str) -> Option<f64> {
    let text = fs::read_to_string(path).ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Sum of `schedstat` over the live threads: nanosecond resolution, where `/proc/self/stat`
/// counts 10 ms ticks (too coarse for measurements of a few hundred ms). The threads of a
/// measurement (runtimes, proxy) live until the process exits, so none is missed.
fn threads_cpu_seconds() -> Option<f64> {
    let mut total = 0.0;
    let mut any = false;
    for entry in fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        let path = entry.path().join("schedstat");
        if let Some(s) = path.to_str().and_then(schedstat_seconds) {
            total += s;
            any = true;
        }
    }
    any.then_some(total)
}

/// How CPU time is read on this machine (printed with the results).
pub fn cpu_source() -> &'static str {
    if threads_cpu_seconds().is_some_and(|s| s > 0.0) {
        "sum of /proc/self/task/*/schedstat (ns)"
    } else {
        "/proc/self/stat utime+stime (10 ms ticks)"
    }
}

/// CPU seconds (user + sys) used so far by this whole process, all threads.
pub fn process_cpu_seconds() -> f64 {
    threads_cpu_seconds()
        .filter(|&s| s > 0.0)
        .or_else(|| stat_cpu_seconds("/proc/self/stat"))
        .unwrap_or(f64::NAN)
}

/// CPU seconds used so far by one thread of this process.
pub fn thread_cpu_seconds(tid: u32) -> f64 {
    schedstat_seconds(&format!("/proc/self/task/{tid}/schedstat"))
        .filter(|&s| s > 0.0)
        .or_else(|| stat_cpu_seconds(&format!("/proc/self/task/{tid}/stat")))
        .unwrap_or(f64::NAN)
}

/// Kernel id of the calling thread (first field of `/proc/thread-self/stat`).
pub fn current_tid() -> Option<u32> {
    let text = fs::read_to_string("/proc/thread-self/stat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Resident set size of this process in bytes. This is `/proc/self/statm` field 2 times the
/// page size; it is read as `VmRSS` from `/proc/self/status`, which is the same counter already
/// in bytes, so no page size (`sysconf`, libc) is needed.
pub fn rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU clock for one measurement: the whole process, optionally minus one helper thread
/// (the delay proxy of `long-link`, which is test equipment and not part of the mux cost).
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    exclude_tid: Option<u32>,
}

impl CpuMeter {
    /// Whole-process CPU.
    pub fn process() -> Self {
        CpuMeter { exclude_tid: None }
    }

    /// Whole-process CPU minus the CPU of thread `tid`.
    pub fn excluding(tid: Option<u32>) -> Self {
        CpuMeter { exclude_tid: tid }
    }

    /// CPU seconds so far.
    pub fn now(&self) -> f64 {
        let total = process_cpu_seconds();
        match self.exclude_tid {
            Some(tid) => total - thread_cpu_seconds(tid),
            None => total,
        }
    }
}

/// The soft limit on open files, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// CPU seconds (user + sys) used so far by another process of ours (the sessions workloads'
/// server process): the sum of its threads' `schedstat`, or its `stat` ticks.
pub fn pid_cpu_seconds(pid: u32) -> f64 {
    let mut total = 0.0;
    let mut any = false;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for entry in tasks.flatten() {
            let path = entry.path().join("schedstat");
            if let Some(s) = path.to_str().and_then(schedstat_seconds) {
                total += s;
                any = true;
            }
        }
    }
    if any && total > 0.0 {
        total
    } else {
        stat_cpu_seconds(&format!("/proc/{pid}/stat")).unwrap_or(f64::NAN)
    }
}

/// Anonymous resident memory (heap, stacks; `RssAnon` of `/proc/PID/status`) of this process
/// (`None`) or of process `pid`, in bytes. Unlike `VmRSS` it leaves out file-backed pages, so
/// code first run during a measurement is not counted as memory per session.
pub fn rss_anon_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The open-files limit after trying to raise it: (soft limit now, hard limit, note). The soft
/// limit is raised to `want` if the hard limit allows, else to the hard limit; a process that
/// may raise its hard limit (root) gets `want` even above it.
pub fn raise_open_files(want: u64) -> (u64, u64, Option<String>) {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let before = getrlimit(Resource::Nofile);
        let hard = before.maximum.unwrap_or(u64::MAX);
        let soft = before.current.unwrap_or(u64::MAX);
        if soft >= want {
            return (soft, hard, None);
        }
        if want > hard {
            let raised = Rlimit {
                current: Some(want),
                maximum: Some(want),
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return (
                    want,
                    want,
                    Some(format!("raised the hard limit {hard} to {want}")),
                );
            }
        }
        let target = want.min(hard);
        let raised = Rlimit {
            current: Some(target),
            maximum: before.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => (target, hard, None),
            Err(e) => (soft, hard, Some(format!("setrlimit failed: {e}"))),
        }
    }
    #[cfg(not(unix))]
    {
        let limit = open_files_limit().map_or(want, |l| l as u64);
        (limit, limit, Some("no setrlimit on this platform".into()))
    }
}
