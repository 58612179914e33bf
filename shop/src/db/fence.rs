//! Read-your-writes (DESIGN.md, failure mode 7): what one caller has written, as
//! WAL positions per database role, so its display reads use a replica only once
//! that replica has replayed those writes.
//!
//! A request runs inside a [`Caller`] scope (a task-local set by the server's
//! middleware). The scope holds the fences the caller arrived with (stored with
//! its session, or sent back in the `Ninefold-Fence` header), records which roles
//! the request touched on their primaries, and receives the positions taken after
//! a write request. Work outside any scope (workers, commands) has no fence.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

tokio::task_local! {
    static CALLER: Arc<Caller>;
}

/// One request's view of its caller's writes.
#[derive(Debug, Default)]
pub struct Caller {
    inner: Mutex<CallerState>,
}

#[derive(Debug, Default)]
struct CallerState {
    /// A request that may write (not GET or HEAD).
    writes: bool,
    /// Role name → the WAL position a replica must have replayed.
    fences: BTreeMap<String, u64>,
    /// Roles whose primary this request used (and so may have written).
    touched: Vec<String>,
}

impl Caller {
    /// A caller arriving with `fences`; `writes` for a request that may write.
    pub fn new(fences: impl IntoIterator<Item = (String, u64)>, writes: bool) -> Arc<Self> {
        let caller = Arc::new(Self::default());
        caller.inner.lock().unwrap_or_else(|e| e.into_inner()).writes = writes;
        caller.raise(fences);
        caller
    }

    /// Raises fences (never lowers one: positions only grow).
    pub fn raise(&self, fences: impl IntoIterator<Item = (String, u64)>) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for (role, position) in fences {
            let held = state.fences.entry(role).or_insert(0);
            *held = (*held).max(position);
        }
    }

    pub fn fence(&self, role: &str) -> Option<u64> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).fences.get(role).copied()
    }

    pub fn fences(&self) -> BTreeMap<String, u64> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).fences.clone()
    }

    /// The roles this request used on their primaries.
    pub fn touched(&self) -> Vec<String> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).touched.clone()
    }

    fn touch(&self, role: &str) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !state.touched.iter().any(|r| r == role) {
            state.touched.push(role.to_owned());
        }
    }

    /// Runs `work` as this caller.
    pub async fn scope<F: Future>(self: Arc<Self>, work: F) -> F::Output {
        CALLER.scope(self, work).await
    }
}

/// The current caller's fence for `role`, if the work runs for a caller that has one.
pub(crate) fn current(role: &str) -> Option<u64> {
    CALLER.try_with(|caller| caller.fence(role)).ok().flatten()
}

/// Whether the current request may already have written to `role`: a write
/// request that has used its primary. Its display reads there go to the primary,
/// since its fence is only taken when the request ends.
pub(crate) fn may_have_written(role: &str) -> bool {
    CALLER
        .try_with(|caller| {
            let state = caller.inner.lock().unwrap_or_else(|e| e.into_inner());
            state.writes && state.touched.iter().any(|r| r == role)
        })
        .unwrap_or(false)
}

/// Notes that the current caller used `role`'s primary.
pub(crate) fn touched(role: &str) {
    let _ = CALLER.try_with(|caller| caller.touch(role));
}

/// `future`, carrying the current caller into wherever it is spawned: the server's
/// executor wraps what Leptos spawns to render a page with this.
pub fn carry<F>(future: F) -> Pin<Box<dyn Future<Output = F::Output> + Send>>
where
    F: Future + Send + 'static,
{
    match CALLER.try_with(Arc::clone) {
        Ok(caller) => Box::pin(CALLER.scope(caller, future)),
        Err(_) => Box::pin(future),
    }
}

/// As [`carry`], for futures that stay on one thread.
pub fn carry_local<F>(future: F) -> Pin<Box<dyn Future<Output = F::Output>>>
where
    F: Future + 'static,
{
    match CALLER.try_with(Arc::clone) {
        Ok(caller) => Box::pin(CALLER.scope(caller, future)),
        Err(_) => Box::pin(future),
    }
}

/// The `Ninefold-Fence` header's value: `main=123;shard_2=456`.
pub fn format_header(fences: &BTreeMap<String, u64>) -> String {
    fences.iter().map(|(role, position)| format!("{role}={position}")).collect::<Vec<_>>().join(";")
}

/// Reads a `Ninefold-Fence` header. Whatever does not parse is ignored (a fence is
/// a hint that can only send reads to the primary, never an error); at most 64
/// roles are read, with names of at most 40 safe characters.
pub fn parse_header(value: &str) -> Vec<(String, u64)> {
    value
        .split(';')
        .take(64)
        .filter_map(|pair| {
            let (role, position) = pair.trim().split_once('=')?;
            let well_formed = !role.is_empty() && role.len() <= 40 && role.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            well_formed.then(|| Some((role.to_owned(), position.trim().parse::<u64>().ok()?))).flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_garbage_is_ignored() {
        let fences = BTreeMap::from([("main".to_owned(), 42), ("shard_1".to_owned(), 7)]);
        assert_eq!(parse_header(&format_header(&fences)), vec![("main".to_owned(), 42), ("shard_1".to_owned(), 7)]);
        for garbage in ["", ";;;", "main", "main=", "main=-1", "main=0x10", "=5", "ma in=5", "main=99999999999999999999999", "<script>=1"] {
            assert_eq!(parse_header(garbage), vec![], "{garbage:?}");
        }
        assert_eq!(parse_header("junk;main=5;x=y"), vec![("main".to_owned(), 5)]);
    }

    #[tokio::test]
    async fn fences_only_rise_and_follow_the_caller_into_spawned_work() {
        let caller = Caller::new([("main".to_owned(), 10)], false);
        caller.raise([("main".to_owned(), 5), ("shard_0".to_owned(), 3)]);
        assert_eq!(caller.fence("main"), Some(10));
        let seen = caller.clone().scope(async { tokio::spawn(carry(async { current("shard_0") })).await.unwrap() }).await;
        assert_eq!(seen, Some(3));
        assert_eq!(tokio::spawn(async { current("main") }).await.unwrap(), None, "no caller outside a scope");
    }
}
