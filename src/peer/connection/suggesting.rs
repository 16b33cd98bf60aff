//! BEP 6 `suggest` on a connection ([`crate::peer::suggest`]): a seeder deals the peer it
//! unchokes pieces it has sent to nobody; a peer's suggestions break ties in our picking.

use super::Conn;
use crate::wire::Message;
use std::io::{Read, Write};

impl<S: Read + Write> Conn<'_, S> {
    /// The peer suggests a piece: kept to prefer among equally rare pieces. Ignored without
    /// the fast extension, or for a piece out of range.
    pub(super) fn on_suggest(&mut self, index: u32) {
        if self.fast.enabled() && (index as usize) < self.peer_has.len() {
            self.suggestions.on_suggest(index);
        }
    }

    /// The peer asked for the first block of `index`: the dealer counts the piece as sent
    /// (unless it was dealt to this peer, and so counted already), and a seeder deals the
    /// peer another piece to keep it [`AHEAD`](crate::peer::suggest::AHEAD).
    pub(super) fn on_started(&mut self, index: u32) {
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
