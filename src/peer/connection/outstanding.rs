//! What happens to requests outstanding in either direction when the other side chokes,
//! rejects, cancels or snubs: the fast extension (BEP 6, [`crate::peer::fast`]) and the snub
//! clock ([`crate::peer::snub`]) applied to the connection's pipeline, picker and outbox.

use super::Conn;
use crate::peer::pipeline::BlockRequest;
use crate::peer::snub::SNUBBED_IN_FLIGHT;
use crate::wire::Message;
use std::io::{Read, Write};
use std::time::Instant;

impl<S: Read + Write> Conn<'_, S> {
    /// We choke the peer: its queued requests are dropped, as BEP 3 allows, except those for
    /// its allowed-fast pieces; a fast peer is told of each by a reject rather than left
    /// waiting.
    pub(super) fn choke_peer(&mut self) {
        let fast = &self.fast;
        let dropped = self.outbox.drop_blocks(|r| fast.granted(r.index));
        log::debug!(
            "{}: choked, {} queued requests dropped",
            self.remote,
            dropped.len()
        );
        self.queue(Message::Choke);
        if self.fast.enabled() {
            for r in dropped {
                self.queue(reject(r));
            }
        }
    }

    /// The peer withdraws a request. BEP 6: one still queued is answered with a reject (one
    /// written already was answered with its block).
    pub(super) fn on_cancel(&mut self, r: BlockRequest) {
        if self.outbox.cancel(r) && self.fast.enabled() {
            self.queue(reject(r));
        }
    }

    /// The peer chokes us. A BEP 3 peer dropped our requests: its pieces go to other peers at
    /// once. A fast peer cancelled nothing: what is requested stays valid until the peer
    /// serves or rejects it.
    pub(super) fn on_choked(&mut self) {
        log::debug!(
            "{}: chokes us, {} requests outstanding",
            self.remote,
            self.pipeline.in_flight()
        );
        self.peer_choking = true;
        if self.fast.enabled() {
            self.release_stalled();
            return;
        }
        for index in self.pipeline.on_choke() {
            self.torrent.picker.put_back(index);
        }
        self.snub.on_nothing_in_flight();
    }

    /// A fast peer will not serve a request of ours. If it chokes us, the piece goes back to
    /// the picker once nothing of it is requested. If not, it refuses the piece for now (an
    /// initial seeder sends each piece once first, see [`crate::peer::suggest`]): the piece
    /// goes to other peers at once, and we ask this one for others ([`Fast::askable`]).
    ///
    /// [`Fast::askable`]: crate::peer::fast::Fast::askable
    pub(super) fn on_reject(&mut self, r: BlockRequest) {
        if !self.pipeline.on_reject(r) {
            return;
        }
        if self.peer_choking {
            self.release_stalled();
            return;
        }
        self.fast.on_refused(r.index, Instant::now());
        self.give_up(r.index);
    }

    /// The peer leaves our requests unanswered: its pieces go to other peers, and it may
    /// hold only one request until it answers (see [`snub`]).
    pub(super) fn on_snubbed(&mut self) {
        log::info!(
            "{}: {} snubs us, its pieces go to other peers",
            self.torrent.meta.info.name,
            self.remote
        );
        for index in self.pipeline.pieces() {
            self.give_up(index);
        }
        self.pipeline.set_cap(Some(SNUBBED_IN_FLIGHT));
        self.snub.on_nothing_in_flight();
    }

    /// A peer that chokes us will not serve the pieces of ours none of whose blocks is still
    /// requested (unless it allows them fast): they go back to the picker.
    pub(super) fn release_stalled(&mut self) {
        if !self.peer_choking {
            return;
        }
        let fast = &self.fast;
        for index in self.pipeline.release(|i| fast.offered(i)) {
            self.torrent.picker.put_back(index);
        }
        if self.pipeline.in_flight() == 0 {
            self.snub.on_nothing_in_flight();
        }
    }

    /// Stops fetching a piece (verified elsewhere, or the peer snubs us) and cancels its
    /// outstanding requests.
    pub(super) fn give_up(&mut self, index: u32) {
        let Some(cancels) = self.pipeline.abandon(index) else {
            return;
        };
        self.torrent.picker.put_back(index);
        self.queue_all(cancels.into_iter().map(|r| Message::Cancel {
            index: r.index,
            begin: r.begin,
            length: r.length,
        }));
    }
}

/// The `reject` of a request (BEP 6).
pub(super) fn reject(r: BlockRequest) -> Message {
    Message::Reject {
        index: r.index,
        begin: r.begin,
        length: r.length,
    }
}
