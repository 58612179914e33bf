//! Crash points for the crash tests: with the `fault-injection` feature (test
//! builds only) and `NINEFOLD_CRASH_AT=<point>` set, the process kills itself
//! with SIGKILL when it reaches that point, between two steps of a flow that spans
//! databases. `<point>#<n>` waits for the n-th time the point is reached, so a
//! test can let some work through before the kill. Without the feature this
//! compiles to nothing.

#[inline(always)]
pub fn crash_point(point: &str) {
    #[cfg(feature = "fault-injection")]
    if let Ok(wanted) = std::env::var("NINEFOLD_CRASH_AT") {
        static HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let (name, nth) = match wanted.split_once('#') {
            Some((name, nth)) => (name, nth.parse::<u64>().unwrap_or(1)),
            None => (wanted.as_str(), 1),
        };
        if name == point && HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 >= nth {
            tracing::warn!(point, "fault injection: killing this process with SIGKILL");
            let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
            std::process::abort();
        }
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = point;
}
