//! The thread batches run on (issue 14). A batch ([`crate::services::group_commit`])
//! is the critical path of every request waiting in it: its statements run one
//! after another, and each reply must reach it at once. On the request runtime,
//! under load, a reply waited behind every busy request task and for the I/O
//! driver's next turn: about 3 ms per round trip against 40 µs for an idle client.
//! Here batches have a runtime and an I/O driver of their own, and on PostgreSQL
//! their own connections ([`crate::db::Db`] picks its batch pool on this thread),
//! so a reply wakes its batch as soon as it arrives.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::Handle;

thread_local! {
    static ON_BATCH_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` on the batch thread, started on first use.
pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(work: F) {
    handle().spawn(work);
}

/// Runs `work` on the batch thread and hands back what it made: for what must be
/// made there, as connections whose replies that thread's I/O driver is to drive.
pub(crate) async fn run<T: Send + 'static, F: Future<Output = T> + Send + 'static>(work: F) -> T {
    let (done, made) = tokio::sync::oneshot::channel();
    spawn(async move {
        let _ = done.send(work.await);
    });
    made.await.expect("the batch thread runs every task it is given")
}

/// Whether the caller runs on the batch thread.
pub(crate) fn is_current() -> bool {
    ON_BATCH_THREAD.with(Cell::get)
}

fn handle() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("ninefold-batches".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("building the batch runtime");
                ON_BATCH_THREAD.with(|on| on.set(true));
                let _ = sender.send(runtime.handle().clone());
                // Batches are spawned onto it; it lives as long as the process.
                runtime.block_on(std::future::pending::<()>());
            })
            .expect("starting the batch thread");
        receiver.recv().expect("the batch thread started")
    })
}
