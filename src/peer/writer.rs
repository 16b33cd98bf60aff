//! The sending half of a connection: an [`Outbox`] the connection loop queues messages and
//! accepted block requests into without ever blocking, and the writer thread ([`run`]) that
//! writes them to the socket.
//!
//! The loop must never stop reading because it is writing: two peers that serve each other
//! with blocking writes both stop reading once both socket buffers fill, both advertise a
//! zero window, and the connection freezes. So the loop only queues; one writer thread per
//! connection blocks on the socket instead.
//!
//! Memory a slow reader can make us hold is bounded: an accepted request is queued as its 12
//! bytes ([`BlockRequest`]) and read from disk only when the writer is about to send it, at
//! most [`MAX_QUEUED_BLOCKS`] of them; further requests are dropped (as libtorrent drops
//! requests past its queue). The writer holds one batch of about 256 KiB (`BATCH`) plus one
//! block. A `cancel` removes its block from the queue if it was not written yet.
//!
//! A peer that never reads makes a socket write block for the write time-out the caller set;
//! the writer then records the failure ([`Outbox::take_failure`]) and stops, and the loop
//! ends the connection on its next tick.
//!
//! Under an upload limit ([`crate::peer::rate_limit`]) the writer charges each block before
//! reading it, writes what it has gathered so far, and waits on the outbox (so a close ends
//! the wait at once); batches shrink to about 1/8 s of the rate so that messages queued behind
//! blocks are not held up for long.
//!
//! The outbox's mutex is held for single queue steps, never across I/O or another lock.

use crate::lock::lock;
use crate::peer::pipeline::BlockRequest;
use crate::peer::torrent_state::TorrentState;
use crate::wire::{MAX_BLOCK, Message};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Accepted block requests queued per connection and not written yet; requests past this are
/// dropped. This is the `reqq` to advertise once BEP 10 exists.
pub const MAX_QUEUED_BLOCKS: usize = 500;
/// The writer gathers queued messages into one write of about this many bytes.
const BATCH: usize = 256 * 1024;

/// Something waiting to be written.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Message(Message),
    /// A block we agreed to serve, read from disk when its turn comes.
    Block(BlockRequest),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    blocks: usize,
    /// The connection ended: no more items. With `drain` the writer writes what is queued
    /// first; without, it stops at once.
    closed: bool,
    drain: bool,
    /// Set by the writer when it stops.
    finished: bool,
    /// Set with `failure` when a write failed; stays set once the failure is taken.
    failed: bool,
    failure: Option<io::Error>,
}

/// The queue between a connection loop and its writer thread.
#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
    /// Wakes the writer (new items, close) and whoever waits for it to finish.
    changed: Condvar,
    /// Block bytes written so far (the peer manager's upload rate).
    sent: AtomicU64,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    fn push(&self, item: Item) {
        lock(&self.queue).items.push_back(item);
        self.changed.notify_all();
    }

    /// Queues a message.
    pub fn send(&self, message: Message) {
        self.push(Item::Message(message));
    }

    /// Queues a block to serve; `false` (and nothing queued) when [`MAX_QUEUED_BLOCKS`] are
    /// waiting already.
    pub fn serve(&self, request: BlockRequest) -> bool {
        let mut queue = lock(&self.queue);
        if queue.blocks >= MAX_QUEUED_BLOCKS {
            return false;
        }
        queue.blocks += 1;
        queue.items.push_back(Item::Block(request));
        drop(queue);
        self.changed.notify_all();
        true
    }

    /// Drops a queued block the peer no longer wants; `false` if it is not queued (written
    /// already, or never accepted).
    pub fn cancel(&self, request: BlockRequest) -> bool {
        let mut queue = lock(&self.queue);
        let Some(at) = queue
            .items
            .iter()
            .position(|item| *item == Item::Block(request))
        else {
            return false;
        };
        queue.items.remove(at);
        queue.blocks -= 1;
        true
    }

    /// Drops every queued block but those `keep` accepts (we choke the peer, so BEP 3 lets us
    /// drop its requests; BEP 6 keeps its allowed-fast ones) and returns the dropped ones.
    pub fn drop_blocks(&self, keep: impl Fn(&BlockRequest) -> bool) -> Vec<BlockRequest> {
        let mut queue = lock(&self.queue);
        let mut dropped = Vec::new();
        queue.items.retain(|item| match item {
            Item::Block(request) if !keep(request) => {
                dropped.push(*request);
                false
            }
            _ => true,
        });
        queue.blocks -= dropped.len();
        dropped
    }

    /// Block bytes written so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Blocks queued and not written yet.
    pub fn queued_blocks(&self) -> usize {
        lock(&self.queue).blocks
    }

    /// Why the writer stopped, if it failed (taken once).
    pub fn take_failure(&self) -> Option<io::Error> {
        lock(&self.queue).failure.take()
    }

    /// Whether the writer stopped on a failed write.
    pub fn failed(&self) -> bool {
        lock(&self.queue).failed
    }

    /// Ends the outbox: the writer stops once it has written what is queued (`drain`) or at
    /// once. Pair it with something that unblocks a write in progress (closing the socket).
    pub fn close(&self, drain: bool) {
        let mut queue = lock(&self.queue);
        queue.closed = true;
        queue.drain = drain;
        drop(queue);
        self.changed.notify_all();
    }

    /// Waits up to `limit` for the writer to stop; whether it did.
    pub fn wait_finished(&self, limit: Duration) -> bool {
        let queue = lock(&self.queue);
        let (queue, _) = self
            .changed
            .wait_timeout_while(queue, limit, |q| !q.finished)
            .unwrap_or_else(|e| e.into_inner());
        queue.finished
    }

    /// Waits `limit` (a rate limit's wait) unless the outbox is closed without draining;
    /// whether the writer should carry on.
    fn pause(&self, limit: Duration) -> bool {
        let queue = lock(&self.queue);
        let (queue, _) = self
            .changed
            .wait_timeout_while(queue, limit, |q| !(q.closed && !q.drain))
            .unwrap_or_else(|e| e.into_inner());
        !(queue.closed && !queue.drain)
    }

    /// The next items to write, about `budget` bytes; waits for some when `wait`. `None`
    /// when there is nothing (more) to write.
    fn next_batch(&self, wait: bool, budget: usize) -> Option<Vec<Item>> {
        let mut queue = lock(&self.queue);
        loop {
            if queue.closed && !queue.drain {
                return None;
            }
            if !queue.items.is_empty() {
                break;
            }
            if queue.closed || !wait {
                return None;
            }
            queue = self.changed.wait(queue).unwrap_or_else(|e| e.into_inner());
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < budget {
            let Some(item) = queue.items.pop_front() else {
                break;
            };
            bytes += match &item {
                Item::Block(r) => {
                    queue.blocks -= 1;
                    r.length as usize
                }
                Item::Message(_) => 16,
            };
            batch.push(item);
        }
        Some(batch)
    }

    fn finish(&self, failure: Option<io::Error>) {
        let mut queue = lock(&self.queue);
        queue.finished = true;
        queue.failed = failure.is_some();
        queue.failure = failure;
        drop(queue);
        self.changed.notify_all();
    }
}

/// The writer thread: writes what the outbox gets until it is closed or a write fails.
pub fn run(outbox: &Outbox, mut stream: impl Write, torrent: &TorrentState) {
    let mut buf = Vec::new();
    let mut result = Ok(());
    while let Some(batch) = outbox.next_batch(true, batch_budget(torrent)) {
        result = write_batch(batch, outbox, &mut stream, torrent, &mut buf);
        if result.is_err() {
            break;
        }
    }
    outbox.finish(result.err());
}

/// Writes what is queued now, without waiting for more: the connection loop's own way of
/// sending when no writer thread runs (its unit tests, over in-memory streams).
pub fn write_ready(
    outbox: &Outbox,
    stream: &mut impl Write,
    torrent: &TorrentState,
) -> io::Result<()> {
    let mut buf = Vec::new();
    while let Some(batch) = outbox.next_batch(false, batch_budget(torrent)) {
        write_batch(batch, outbox, stream, torrent, &mut buf)?;
    }
    Ok(())
}

/// Bytes to gather into one write: [`BATCH`], or about 1/8 s of an upload limit.
fn batch_budget(torrent: &TorrentState) -> usize {
    match torrent.rate_limits.upload_rate().0 {
        0 => BATCH,
        rate => (rate as usize / 8).clamp(MAX_BLOCK as usize, BATCH),
    }
}

/// Encodes a batch (reading its blocks from disk) and writes it in one go, or in pieces when
/// the upload limit makes a block wait.
fn write_batch(
    batch: Vec<Item>,
    outbox: &Outbox,
    stream: &mut impl Write,
    torrent: &TorrentState,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    buf.clear();
    let mut served = 0u64;
    for item in batch {
        match item {
            Item::Message(message) => message.encode_into(buf),
            Item::Block(BlockRequest {
                index,
                begin,
                length,
            }) => {
                let wait = torrent.rate_limits.charge_upload(length as u64);
                if !wait.is_zero() {
                    write_out(stream, outbox, torrent, buf, std::mem::take(&mut served))?;
                    if !outbox.pause(wait) {
                        return Ok(());
                    }
                }
                match torrent.storage.read(index, begin, length) {
                    Ok(data) => {
                        Message::Piece { index, begin, data }.encode_into(buf);
                        served += length as u64;
                    }
                    Err(e) => log::warn!("{}: {e}", torrent.meta.info.name),
                }
            }
        }
    }
    write_out(stream, outbox, torrent, buf, served)
}

/// Writes and empties `buf`, which holds `served` bytes of blocks, and counts them for the
/// torrent and for this connection (the choker's rates).
fn write_out(
    stream: &mut impl Write,
    outbox: &Outbox,
    torrent: &TorrentState,
    buf: &mut Vec<u8>,
    served: u64,
) -> io::Result<()> {
    if !buf.is_empty() {
        stream.write_all(buf)?;
        buf.clear();
    }
    torrent.uploaded.fetch_add(served, Ordering::Relaxed);
    outbox.sent.fetch_add(served, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::test_support::{Fixture, PIECE};
    use crate::wire::{MessageReader, max_message_len};

    fn block(index: u32, begin: u32, length: u32) -> BlockRequest {
        BlockRequest {
            index,
            begin,
            length,
        }
    }

    /// Everything written, decoded.
    fn messages(bytes: &[u8]) -> Vec<Message> {
        let mut reader = MessageReader::new(max_message_len(8));
        let mut stream = bytes;
        std::iter::from_fn(|| reader.read(&mut stream).ok()).collect()
    }

    #[test]
    fn writes_messages_and_blocks_in_order_and_a_cancel_drops_a_queued_block() {
        let f = Fixture::new(3, &[0, 1, 2]);
        let outbox = Outbox::new();
        outbox.send(Message::Unchoke);
        assert!(outbox.serve(block(0, 0, 100)));
        assert!(outbox.serve(block(1, 10, 20)));
        assert!(outbox.serve(block(2, 0, 30)));
        assert!(outbox.cancel(block(1, 10, 20)));
        assert!(!outbox.cancel(block(1, 10, 20)), "gone already");
        assert_eq!(outbox.queued_blocks(), 2);
        let mut out = Vec::new();
        write_ready(&outbox, &mut out, &f.state).unwrap();
        let piece = |index: u32, begin: usize, len: usize| Message::Piece {
            index,
            begin: begin as u32,
            data: f.piece(index)[begin..begin + len].to_vec(),
        };
        assert_eq!(
            messages(&out),
            [Message::Unchoke, piece(0, 0, 100), piece(2, 0, 30)]
        );
        assert_eq!(f.state.uploaded.load(Ordering::SeqCst), 130);
        assert!(!outbox.cancel(block(0, 0, 100)), "written already");
        assert_eq!(outbox.queued_blocks(), 0);
        assert_eq!(outbox.sent(), 130);
    }

    #[test]
    fn choking_drops_the_queued_blocks_but_not_the_messages() {
        let f = Fixture::new(3, &[0, 1]);
        let outbox = Outbox::new();
        assert!(outbox.serve(block(0, 0, 100)));
        outbox.send(Message::Choke);
        assert!(outbox.serve(block(1, 0, 100)));
        assert!(outbox.serve(block(1, 100, 100)));
        // An allowed-fast piece's blocks stay.
        assert_eq!(
            outbox.drop_blocks(|r| r.index == 1 && r.begin == 100),
            [block(0, 0, 100), block(1, 0, 100)]
        );
        assert_eq!(outbox.queued_blocks(), 1);
        let mut out = Vec::new();
        write_ready(&outbox, &mut out, &f.state).unwrap();
        let kept = Message::Piece {
            index: 1,
            begin: 100,
            data: f.piece(1)[100..200].to_vec(),
        };
        assert_eq!(messages(&out), [Message::Choke, kept]);
        assert_eq!(outbox.sent(), 100);
    }

    #[test]
    fn queued_blocks_are_bounded() {
        let outbox = Outbox::new();
        for i in 0..MAX_QUEUED_BLOCKS as u32 {
            assert!(outbox.serve(block(0, i, 1)));
        }
        assert!(!outbox.serve(block(1, 0, 1)), "over the bound: dropped");
        assert_eq!(outbox.queued_blocks(), MAX_QUEUED_BLOCKS);
        // Batches stay near their size however much is queued.
        let batch = outbox.next_batch(false, BATCH).unwrap();
        assert_eq!(batch.len(), MAX_QUEUED_BLOCKS, "500 one-byte blocks");
        assert!(outbox.serve(block(1, 0, PIECE)));
    }

    /// A stream whose writes fail, like a socket whose write timed out.
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::TimedOut.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_writer_thread_stops_on_close_or_on_a_failed_write() {
        let f = Fixture::new(3, &[0]);
        let outbox = Outbox::new();
        std::thread::scope(|s| {
            let writer = s.spawn(|| run(&outbox, Vec::new(), &f.state));
            outbox.send(Message::Interested);
            outbox.close(true);
            assert!(outbox.wait_finished(Duration::from_secs(10)));
            writer.join().unwrap();
        });
        assert!(outbox.take_failure().is_none());

        let outbox = Outbox::new();
        std::thread::scope(|s| {
            s.spawn(|| run(&outbox, Stuck, &f.state));
            assert!(outbox.serve(block(0, 0, 10)));
            assert!(outbox.wait_finished(Duration::from_secs(10)));
        });
        let failure = outbox.take_failure().expect("the failed write is reported");
        assert_eq!(failure.kind(), io::ErrorKind::TimedOut);

        // Closed without draining: what is queued is dropped.
        let outbox = Outbox::new();
        outbox.send(Message::Interested);
        outbox.close(false);
        let mut out = Vec::new();
        run(&outbox, &mut out, &f.state);
        assert!(out.is_empty());
    }
}
