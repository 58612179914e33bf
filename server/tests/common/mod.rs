//! For the tests that run the real server binary.

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The server binary listening on `port`, quiet, with no rate limits.
pub fn server_command(port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command.env("NINEFOLD_ADDR", format!("127.0.0.1:{port}")).env("NINEFOLD_RATE_LIMITS", "off").env("RUST_LOG", "warn");
    command
}

/// Waits until the server listens on `port`: the child, or its output if it
/// exited first. Panics after a minute.
pub fn listening(mut child: Child, port: u16) -> Result<Child, Output> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if child.try_wait().unwrap().is_some() {
            return Err(child.wait_with_output().unwrap());
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the server neither listened nor exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

/// Sends SIGTERM.
pub fn terminate(child: &Child) {
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
}
