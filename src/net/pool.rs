//! A fixed pool of worker threads fed by a crossbeam channel.
//!
//! Both servers (tracker and upload side) accept connections on one thread and hand each
//! connection to this pool, so the number of threads never grows with the number of clients.

use crossbeam_channel::{Sender, unbounded};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of named worker threads executing jobs in submission order.
pub struct ThreadPool {
    sender: Option<Sender<(Job, Done)>>,
    workers: Vec<JoinHandle<()>>,
    /// Jobs accepted and not finished (queued or running).
    pending: Arc<AtomicUsize>,
    /// Workers plus queue places: how many jobs may be pending at once.
    capacity: usize,
}

/// Frees a job's place when the job ends, also if it panics.
struct Done(Arc<AtomicUsize>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ThreadPool {
    /// Starts `size` workers (at least one) named `name-N`; up to `queue` more jobs may wait
    /// for a free worker.
    pub fn new(name: &str, size: usize, queue: usize) -> std::io::Result<ThreadPool> {
        let size = size.max(1);
        // Admission is bounded by `pending`, so the channel itself needs no bound.
        let (sender, receiver) = unbounded::<(Job, Done)>();
        let mut workers = Vec::with_capacity(size);
        for i in 0..size {
            let receiver = receiver.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        while let Ok((job, _done)) = receiver.recv() {
                            // A job that panics (a bug, logged by the panic hook) must not
                            // take its worker down with it and shrink the pool for good.
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                    })?,
            );
        }
        Ok(ThreadPool {
            sender: Some(sender),
            workers,
            pending: Arc::new(AtomicUsize::new(0)),
            capacity: size + queue,
        })
    }

    /// Queues a job unless every worker is busy and every queue place taken; returns `false`
    /// when it was refused. Counting pending jobs, rather than looking at the channel, means a
    /// burst is never refused merely because idle workers have not woken up yet.
    pub fn try_execute(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.try_execute_or_return((), move |()| job()).is_none()
    }

    /// Like [`ThreadPool::try_execute`] for a job that works on `value`: when the job is
    /// refused, `value` comes back (e.g. a connection to answer some other way).
    pub fn try_execute_or_return<T: Send + 'static>(
        &self,
        value: T,
        job: impl FnOnce(T) + Send + 'static,
    ) -> Option<T> {
        let Some(sender) = &self.sender else {
            return Some(value);
        };
        if self.pending.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Some(value);
        }
        // On a send error the returned job drops its `Done`, which frees the place; the
        // channel only closes when the pool is dropped, so nothing is lost that matters.
        let _ = sender.send((Box::new(move || job(value)), Done(self.pending.clone())));
        None
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

    #[test]
    fn runs_every_job_before_drop_returns() {
        let count = Arc::new(AtomicUsize::new(0));
        {
            let pool = ThreadPool::new("t", 3, 50).unwrap();
            for _ in 0..50 {
                let count = count.clone();
                assert!(pool.try_execute(move || {
                    count.fetch_add(1, Ordering::SeqCst);
                }));
            }
        }
        assert_eq!(count.load(Ordering::SeqCst), 50);
    }

    #[test]
    fn refuses_only_when_workers_and_queue_are_all_taken() {
        let pool = ThreadPool::new("t", 2, 1).unwrap();
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        // A burst right after start: both workers and the queue place are granted at once,
        // whether or not the workers have picked anything up yet.
        for _ in 0..3 {
            let rx = rx.clone();
            assert!(pool.try_execute(move || {
                let _ = rx.recv_timeout(std::time::Duration::from_secs(5));
            }));
        }
        assert!(!pool.try_execute(|| {}), "fourth job refused");
        drop(tx); // release the three jobs
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while pool.pending.load(Ordering::SeqCst) > 0 {
            assert!(std::time::Instant::now() < deadline, "places never freed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(pool.try_execute(|| {}));
    }

    #[test]
    fn a_panicking_job_frees_its_place_and_keeps_its_worker() {
        let pool = ThreadPool::new("t", 1, 0).unwrap();
        assert!(pool.try_execute(|| panic!("job fails on purpose")));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while pool.pending.load(Ordering::SeqCst) > 0 {
            assert!(std::time::Instant::now() < deadline, "place never freed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        assert!(pool.try_execute(move || tx.send(()).unwrap()));
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(5)).is_ok(),
            "the only worker still runs jobs"
        );
    }
}
