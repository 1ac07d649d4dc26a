//! Group commit: requests that arrive while a batch of them is being done
//! are done together in the next one. Used where each request costs a fixed
//! wait that one batch pays once (a sync of the state file, an RCU grace
//! period of the kernel), so that taking 200 containers away at once does
//! not cost 200 of those waits one after the other.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Requests of type `T` waiting for their batch, each answered with an `R`.
pub struct Batcher<T, R> {
    pending: Mutex<Vec<(T, oneshot::Sender<R>)>>,
    /// Held by the caller doing a batch.
    running: tokio::sync::Mutex<()>,
}

impl<T, R> Default for Batcher<T, R> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
            running: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T, R> Batcher<T, R> {
    /// Adds `item` to the next batch and resolves with its answer. Whoever
    /// finds no batch running does everything asked for so far with `run`,
    /// which answers each item in order. `None` when the caller doing our
    /// batch was cancelled before answering it.
    pub async fn submit<F, Fut>(&self, item: T, run: F) -> Option<R>
    where
        F: FnOnce(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (tx, mut rx) = oneshot::channel();
        self.lock_pending().push((item, tx));
        {
            let _running = self.running.lock().await;
            // The batch that just ran may have taken ours along.
            if let Ok(answer) = rx.try_recv() {
                return Some(answer);
            }
            let batch = std::mem::take(&mut *self.lock_pending());
            let (items, senders): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
            let answers = run(items).await;
            for (tx, answer) in senders.into_iter().zip(answers) {
                let _ = tx.send(answer);
            }
        }
        rx.await.ok()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<(T, oneshot::Sender<R>)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_made_while_a_batch_runs_share_the_next() {
        let batcher = Arc::new(Batcher::<usize, usize>::default());
        let batches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (batcher, batches) = (batcher.clone(), batches.clone());
                tokio::spawn(async move {
                    batcher
                        .submit(i, async |items| {
                            batches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            items.into_iter().map(|i| i * 2).collect()
                        })
                        .await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Some(i * 2), "each gets its own answer");
        }
        // The first batch holds what came before it started, the second
        // everything that arrived during the first's 20 ms (a few more on
        // a loaded host, never one per request).
        let n = batches.load(Ordering::SeqCst);
        assert!((1..25).contains(&n), "{n} batches for 50 requests");
    }
}
