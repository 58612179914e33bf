//! Crash points for the crash tests: with the `fault-injection` feature (test
//! builds only) and `NINEFOLD_CRASH_AT=<point>` set, the process kills itself
//! with SIGKILL when it reaches that point, between two steps of a flow that spans
//! databases. Without the feature this compiles to nothing.

#[inline(always)]
pub fn crash_point(point: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("NINEFOLD_CRASH_AT").is_ok_and(|wanted| wanted == point) {
        tracing::warn!(point, "fault injection: killing this process with SIGKILL");
        let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
        std::process::abort();
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = point;
}
