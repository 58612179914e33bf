//! The real binary stops gracefully on SIGTERM: it exits 0, promptly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_server_exits_cleanly_on_sigterm() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .env("NINEFOLD_ADDR", format!("127.0.0.1:{port}"))
        .env("NINEFOLD_DATA_DIR", data_dir.path())
        .env("NINEFOLD_NO_DEMO", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "the server never started listening");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
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
