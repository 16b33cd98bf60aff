//! The open connections of one torrent, and which of two connections to the same peer stays.
//!
//! A connection is identified by its remote address and direction; the peer id in the remote's
//! handshake is only a claim (anyone who handshakes with a peer learns its id). So several
//! connections may claim one id, and none is refused for the claim alone.
//!
//! One case must still end in one connection: a simultaneous open, where we dial a peer while
//! it dials us. Both sides then see one outgoing and one incoming connection with the other's
//! id from the same IP. The rule, the one libtorrent applies, is that **the connection opened
//! by the peer with the higher peer id stays**. Only the higher side acts on it: it keeps its
//! outgoing connection and closes the incoming one (refused if it comes second, closed if it
//! was there first). The lower side keeps both and lets the higher one close its outgoing
//! connection, so both always drop the same connection, whatever order the handshakes finished
//! in, and a stranger claiming another peer's id cannot make us drop the real peer: if we are
//! the higher side, our outgoing connection (to the address we chose) wins over an incoming
//! claim; if we are the lower side, we drop nothing.

use crate::lock::lock;
use crate::peer::error::ConnError;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Mutex;

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We dialled the remote peer.
    Outgoing,
    /// The remote peer dialled us.
    Incoming,
}

/// One open connection as the rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The remote address (for incoming connections, the remote's ephemeral port).
    pub addr: SocketAddr,
    /// The peer id the remote sent in its handshake.
    pub peer_id: [u8; 20],
    /// Who opened it.
    pub direction: Direction,
}

/// What [`resolve`] decides for a new connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the new connection and close the open ones at these positions.
    Admit { close: Vec<usize> },
    /// Close the new connection: one of ours to the same peer is open.
    Refuse,
}

/// Applies the simultaneous-open rule (module doc) to a new connection `new` of a process whose
/// peer id is `our_id`, given the connections already `open`.
pub fn resolve(our_id: &[u8; 20], open: &[Link], new: &Link) -> Verdict {
    // Only the higher side acts; and only a pair in opposite directions from the same IP can
    // be the two halves of a simultaneous open.
    let twins: Vec<usize> = open
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.peer_id == new.peer_id && l.addr.ip() == new.addr.ip() && l.direction != new.direction
        })
        .map(|(i, _)| i)
        .collect();
    if twins.is_empty() || our_id < &new.peer_id {
        return Verdict::Admit { close: Vec::new() };
    }
    match new.direction {
        Direction::Outgoing => Verdict::Admit { close: twins },
        Direction::Incoming => Verdict::Refuse,
    }
}

struct Entry {
    token: u64,
    link: Link,
    /// A handle on the socket, to close the connection from another thread.
    stream: Option<TcpStream>,
}

/// The open connections of one torrent (behind one mutex, held for single steps).
#[derive(Default)]
pub struct OpenConnections {
    entries: Mutex<(u64, Vec<Entry>)>,
}

impl OpenConnections {
    /// Records a connection whose handshake is done, unless [`resolve`] refuses it; closes the
    /// open connections it replaces (through `stream`, a handle on each socket). Returns the
    /// token to [`remove`](Self::remove) it with.
    pub fn admit(
        &self,
        our_id: &[u8; 20],
        link: Link,
        stream: Option<TcpStream>,
    ) -> Result<u64, ConnError> {
        let mut closed = Vec::new();
        let token = {
            let mut guard = lock(&self.entries);
            let (next, entries) = &mut *guard;
            let open: Vec<Link> = entries.iter().map(|e| e.link).collect();
            let Verdict::Admit { close } = resolve(our_id, &open, &link) else {
                return Err(ConnError::Duplicate);
            };
            for i in close.into_iter().rev() {
                closed.push(entries.swap_remove(i));
            }
            *next += 1;
            entries.push(Entry {
                token: *next,
                link,
                stream,
            });
            *next
        };
        // Outside the lock: the connection's own thread sees its socket closed and ends.
        for entry in closed {
            log::info!(
                "{}: closing the duplicate connection opened by the peer",
                entry.link.addr
            );
            if let Some(stream) = entry.stream {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        Ok(token)
    }

    /// Forgets a connection recorded by [`admit`](Self::admit); `false` if it was gone already
    /// (closed as a duplicate or evicted).
    pub fn remove(&self, token: u64) -> bool {
        self.take(token).is_some()
    }

    /// Forgets a connection and closes its socket (its own thread then ends); `false` if it
    /// was gone already.
    pub fn evict(&self, token: u64) -> bool {
        let Some(entry) = self.take(token) else {
            return false;
        };
        if let Some(stream) = entry.stream {
            let _ = stream.shutdown(Shutdown::Both);
        }
        true
    }

    fn take(&self, token: u64) -> Option<Entry> {
        let mut guard = lock(&self.entries);
        let at = guard.1.iter().position(|e| e.token == token)?;
        Some(guard.1.swap_remove(at))
    }

    /// The open connections with their tokens.
    pub fn tokens(&self) -> Vec<(u64, Link)> {
        lock(&self.entries)
            .1
            .iter()
            .map(|e| (e.token, e.link))
            .collect()
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        lock(&self.entries).1.len()
    }

    /// The open connection to `addr`, if any.
    pub fn link_of(&self, addr: SocketAddr) -> Option<Link> {
        lock(&self.entries)
            .1
            .iter()
            .find(|e| e.link.addr == addr)
            .map(|e| e.link)
    }

    /// The open connections.
    pub fn links(&self) -> Vec<Link> {
        lock(&self.entries).1.iter().map(|e| e.link).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Incoming, Outgoing};

    const LOW: [u8; 20] = [1; 20];
    const MID: [u8; 20] = [5; 20];
    const HIGH: [u8; 20] = [9; 20];

    fn link(ip: [u8; 4], port: u16, peer_id: [u8; 20], direction: Direction) -> Link {
        Link {
            addr: SocketAddr::from((ip, port)),
            peer_id,
            direction,
        }
    }

    fn admitted() -> Verdict {
        Verdict::Admit { close: Vec::new() }
    }

    #[test]
    fn both_sides_of_a_simultaneous_open_keep_the_higher_ids_connection() {
        // We (MID) dial a peer at 10.0.0.2:6881 while it dials us from port 50000.
        let ours = link([10, 0, 0, 2], 6881, HIGH, Outgoing);
        let theirs = link([10, 0, 0, 2], 50000, HIGH, Incoming);
        // Lower side: whatever the order, nothing is closed; the peer closes our dial.
        assert_eq!(resolve(&MID, &[ours], &theirs), admitted());
        assert_eq!(resolve(&MID, &[theirs], &ours), admitted());
        // Higher side (peer LOW): our dial stays, whichever handshake finished first.
        let ours = link([10, 0, 0, 2], 6881, LOW, Outgoing);
        let theirs = link([10, 0, 0, 2], 50000, LOW, Incoming);
        assert_eq!(resolve(&MID, &[ours], &theirs), Verdict::Refuse);
        assert_eq!(
            resolve(
                &MID,
                &[ours, theirs],
                &link([10, 0, 0, 2], 50001, LOW, Incoming)
            ),
            Verdict::Refuse
        );
        let other = link([10, 0, 0, 3], 6881, HIGH, Outgoing);
        assert_eq!(
            resolve(&MID, &[other, theirs], &ours),
            Verdict::Admit { close: vec![1] }
        );
    }

    #[test]
    fn a_claimed_id_alone_never_blocks_a_connection() {
        // A stranger from the same IP claims the peer's id and connects first.
        let stranger = link([10, 0, 0, 2], 40000, LOW, Incoming);
        // The real peer dials us too, or we dial it: both come in. (We are higher: our dial
        // closes the stranger; the peer's own incoming one is kept beside it.)
        assert_eq!(
            resolve(
                &MID,
                &[stranger],
                &link([10, 0, 0, 2], 40001, LOW, Incoming)
            ),
            admitted()
        );
        assert_eq!(
            resolve(&MID, &[stranger], &link([10, 0, 0, 2], 6881, LOW, Outgoing)),
            Verdict::Admit { close: vec![0] }
        );
        // We are lower: nothing is ever closed for a claim.
        let stranger = link([10, 0, 0, 2], 40000, HIGH, Incoming);
        for new in [
            link([10, 0, 0, 2], 6881, HIGH, Outgoing),
            link([10, 0, 0, 2], 40001, HIGH, Incoming),
        ] {
            assert_eq!(resolve(&MID, &[stranger], &new), admitted());
        }
        // The same id from another IP is another peer, whatever the directions.
        let elsewhere = link([10, 0, 0, 9], 40000, LOW, Incoming);
        assert_eq!(
            resolve(
                &MID,
                &[elsewhere],
                &link([10, 0, 0, 2], 6881, LOW, Outgoing)
            ),
            admitted()
        );
    }

    #[test]
    fn the_table_closes_replaced_connections_and_forgets_removed_ones() {
        let table = OpenConnections::default();
        let theirs = link([10, 0, 0, 2], 50000, LOW, Incoming);
        let ours = link([10, 0, 0, 2], 6881, LOW, Outgoing);
        let first = table.admit(&MID, theirs, None).unwrap();
        let second = table.admit(&MID, ours, None).unwrap();
        assert_eq!(table.links(), vec![ours], "the incoming twin is closed");
        assert!(matches!(
            table.admit(&MID, theirs, None),
            Err(ConnError::Duplicate)
        ));
        table.remove(first);
        assert_eq!(
            table.links(),
            vec![ours],
            "removing a closed one is a no-op"
        );
        table.remove(second);
        assert!(table.links().is_empty());
        assert!(table.admit(&MID, theirs, None).is_ok());
    }
}
