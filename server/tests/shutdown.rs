//! The real binary stops gracefully on SIGTERM: it exits 0, promptly.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn the_server_exits_cleanly_on_sigterm() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let child = common::server_command(port).env("NINEFOLD_DATA_DIR", data_dir.path()).env("NINEFOLD_NO_DEMO", "1").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut child = common::listening(child, port).expect("the server starts");
    common::terminate(&child);
    let stopping = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exited with {status}");
            break;
        }
        assert!(stopping.elapsed() < Duration::from_secs(10), "still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(data_dir.path().join("main.db").exists() && data_dir.path().join("shard_3.db").exists());
}
