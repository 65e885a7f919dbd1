//! What this machine offers a model: memory, cores, accelerators.

use serde::Serialize;

/// Resources of the machine hearth runs on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `MemTotal` of /proc/meminfo, bytes (0 where unreadable).
    pub ram_total_bytes: u64,
    /// `MemAvailable` of /proc/meminfo, bytes (0 where unreadable).
    pub ram_available_bytes: u64,
    /// Logical cores available to this process.
    pub cpus: usize,
    /// Accelerators the tensor library can use; this build is CPU-only (candle
    /// without CUDA or Metal), so none.
    pub gpus: Vec<String>,
}

impl Machine {
    /// Reads the current machine.
    pub fn detect() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            ram_total_bytes: meminfo_kib(&meminfo, "MemTotal") * 1024,
            ram_available_bytes: meminfo_kib(&meminfo, "MemAvailable") * 1024,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            gpus: candle_gpus(),
        }
    }
}

fn candle_gpus() -> Vec<String> {
    let mut gpus = Vec::new();
    if candle_core::utils::cuda_is_available() {
        gpus.push("cuda:0".to_string());
    }
    if candle_core::utils::metal_is_available() {
        gpus.push("metal:0".to_string());
    }
    gpus
}

/// A `Key:   123 kB` line of /proc/meminfo, in KiB.
pub(crate) fn meminfo_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meminfo_lines() {
        let t = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2000 kB\n";
        assert_eq!(meminfo_kib(t, "MemTotal"), 24_000_000);
        assert_eq!(meminfo_kib(t, "MemAvailable"), 2000);
        assert_eq!(meminfo_kib(t, "Mem"), 0);
        let m = Machine::detect();
        assert!(m.ram_total_bytes > 0 && m.ram_available_bytes <= m.ram_total_bytes);
    }
}
