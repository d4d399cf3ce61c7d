//! Memory of other processes, read from /proc (Linux): resident set (RSS), its peak (HWM) and
//! the proportional set (PSS, which splits shared pages between the processes sharing them;
//! nginx workers share pages with their master, so their summed RSS counts those twice).

/// A `kB` field of /proc/PID/status or smaps_rollup.
fn field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    field_kib(&s, "VmRSS:")
}

pub fn hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    field_kib(&s, "VmHWM:")
}

pub fn pss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    field_kib(&s, "Pss:")
}

/// Resets the peak RSS (VmHWM) to the current RSS. False if the kernel refused.
pub fn reset_hwm(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// `1234,5678` -> pids.
pub fn parse_pids(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse().map_err(|_| format!("not a pid: {p:?}")))
        .collect()
}

/// Summed RSS and PSS of several processes, in KiB.
pub fn sum(pids: &[u32]) -> (u64, u64) {
    pids.iter().fold((0, 0), |(r, p), pid| {
        (
            r + rss_kib(*pid).unwrap_or(0),
            p + pss_kib(*pid).unwrap_or(0),
        )
    })
}
