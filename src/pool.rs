//! A fixed pool of worker threads fed by a crossbeam channel.
//!
//! Both servers (tracker and upload side) accept connections on one thread and hand each
//! connection to this pool, so the number of threads never grows with the number of clients.

use crossbeam_channel::{Sender, bounded};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of named worker threads executing jobs in submission order.
pub struct ThreadPool {
    sender: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// Starts `size` workers (at least one) named `name-N`. `queue` bounds how many jobs may
    /// wait; `execute` blocks when the queue is full, which pushes back on the acceptor.
    pub fn new(name: &str, size: usize, queue: usize) -> std::io::Result<ThreadPool> {
        let (sender, receiver) = bounded::<Job>(queue.max(1));
        let mut workers = Vec::with_capacity(size.max(1));
        for i in 0..size.max(1) {
            let receiver = receiver.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        while let Ok(job) = receiver.recv() {
                            job();
                        }
                    })?,
            );
        }
        Ok(ThreadPool {
            sender: Some(sender),
            workers,
        })
    }

    /// Queues a job; returns `false` when the pool has been shut down.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) -> bool {
        match &self.sender {
            Some(sender) => sender.send(Box::new(job)).is_ok(),
            None => false,
        }
    }

    /// Queues a job unless the queue is full; returns `false` when it was refused.
    pub fn try_execute(&self, job: impl FnOnce() + Send + 'static) -> bool {
        match &self.sender {
            Some(sender) => sender.try_send(Box::new(job)).is_ok(),
            None => false,
        }
    }
}

impl Drop for ThreadPool {
    /// Closes the queue and waits for the workers to finish the jobs already queued.
    fn drop(&mut self) {
        self.sender.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_job_before_drop_returns() {
        let count = Arc::new(AtomicUsize::new(0));
        {
            let pool = ThreadPool::new("t", 3, 4).unwrap();
            for _ in 0..50 {
                let count = count.clone();
                assert!(pool.execute(move || {
                    count.fetch_add(1, Ordering::SeqCst);
                }));
            }
        }
        assert_eq!(count.load(Ordering::SeqCst), 50);
    }

    #[test]
    fn try_execute_refuses_when_full() {
        let pool = ThreadPool::new("t", 1, 1).unwrap();
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        // Occupy the only worker, then fill the one queue slot.
        assert!(pool.execute(move || {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(5));
        }));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(pool.try_execute(|| {}));
        assert!(!pool.try_execute(|| {}));
        drop(tx);
    }
}
