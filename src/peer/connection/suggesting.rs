//! BEP 6 `suggest` on a connection ([`crate::peer::suggest`]): a seeder deals the peer it
//! unchokes pieces it has sent to nobody; a peer's suggestions break ties in our picking.

use super::Conn;
use super::outstanding::reject;
use crate::peer::pipeline::BlockRequest;
use crate::wire::Message;
use std::io::{Read, Write};
use std::time::Instant;

impl<S: Read + Write> Conn<'_, S> {
    /// The peer suggests a piece: kept to prefer among equally rare pieces. Ignored without
    /// the fast extension, or for a piece out of range.
    pub(super) fn on_suggest(&mut self, index: u32) {
        if self.fast.enabled() && (index as usize) < self.peer_has.len() {
            self.suggestions.on_suggest(index);
        }
    }

    /// Whether to serve a request the peer may have (unchoked, or allowed fast, for a piece we
    /// have). Its first request of a piece starts it, unless the dealer refuses the piece
    /// ([`Dealer::claim`](crate::peer::suggest::Dealer::claim): an initial seeder's first lap);
    /// then a fast peer is sent a `reject`, and dealt a piece in its place.
    pub(super) fn start_serving(&mut self, r: BlockRequest) -> bool {
        if self.suggestions.serving(r.index) {
            return true;
        }
        if !self.torrent.dealer.claim(r.index, Instant::now()) && self.dealing() {
            log::trace!("{}: refuses piece {} for now", self.remote, r.index);
            self.suggestions.started(r.index, true);
            self.queue(reject(r));
            self.deal_ahead();
            return false;
        }
        self.suggestions.serve(r.index);
        self.on_started(r.index);
        true
    }

    /// The peer started on `index`: the dealer counts the piece as sent (unless it was dealt
    /// to this peer, and so counted already), and a seeder deals the peer another piece to
    /// keep it [`AHEAD`](crate::peer::suggest::AHEAD).
    fn on_started(&mut self, index: u32) {
        let dealing = self.dealing();
        let dealt = self.suggestions.started(index, dealing);
        if !dealt {
            self.torrent.dealer.note_sent(index);
        }
        log::trace!(
            "{}: starts on piece {index} (dealt: {dealt}, choked: {})",
            self.remote,
            self.am_choking
        );
        self.deal_ahead();
    }

    /// While seeding, tops up the pieces dealt to an unchoked, interested fast peer, skipping
    /// pieces it has.
    pub(super) fn deal_ahead(&mut self) {
        if !self.dealing() {
            return;
        }
        for _ in 0..self.suggestions.wanted() {
            let Some(index) = self.torrent.dealer.deal() else {
                return;
            };
            if self.peer_has.get(index as usize) {
                self.torrent.dealer.give_back(index);
                continue;
            }
            self.suggestions.dealt(index);
            self.queue(Message::Suggest(index));
        }
    }

    /// Whether we deal this peer pieces: we seed, and it is an unchoked, interested fast peer.
    fn dealing(&self) -> bool {
        self.fast.enabled()
            && !self.am_choking
            && self.peer_interested
            && self.torrent.is_complete()
    }

    /// The peer will not start on the pieces dealt to it (choked, or gone): they go back to
    /// the dealer.
    pub(super) fn give_back_dealt(&mut self) {
        for index in self.suggestions.take_dealt() {
            self.torrent.dealer.give_back(index);
        }
    }
}
