//! Minimal HTTP/1.1 over blocking `TcpStream`s, shared by the tracker server and the announce
//! client.
//!
//! Only what trackers need: one request per connection (`Connection: close` both ways), bodies
//! framed by `Content-Length` (server side), and on the client side `Content-Length`, chunked or
//! read-to-close replies (opentracker answers HTTP/1.0 style and closes). Every read is bounded in
//! size and in time: a peer that trickles bytes cannot hold a thread past the deadline.
//!
//! The server side ([`read_request`], [`write_response`]) lives in `server.rs`, the client side
//! ([`request`]) in `client.rs`, URLs and query strings in `url.rs`. This file holds what both
//! sides read messages with: the error type, the deadline-bounded reader and head parsing.

use std::fmt;
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod client;
mod server;
mod url;

pub use client::{MAX_RESPONSE_BODY, Response, request, request_with_headers};
pub use server::{
    Limits, Parsed, Request, linger, parse_request, read_request, write_reply, write_reply_with,
    write_response,
};
pub use url::{HttpUrl, parse_query, parse_url, percent_decode, percent_encode};

/// Most header lines accepted in one request or response.
const MAX_HEADERS: usize = 48;

/// Why an HTTP exchange failed.
#[derive(Debug)]
pub enum HttpError {
    /// A socket operation failed (other than a timeout).
    Io(io::Error),
    /// The deadline for the whole exchange passed.
    Timeout(Duration),
    /// The other side closed the connection before a complete message arrived.
    Closed,
    /// The request line / status line and headers exceed the limit (bytes).
    HeadTooLarge(usize),
    /// The body exceeds the limit (bytes).
    BodyTooLarge(usize),
    /// The message is not valid HTTP/1.x; the text says what is wrong.
    Malformed(String),
    /// The URL is not `http://host[:port]/path`; `https://` and `udp://` land here too.
    BadUrl { url: String, reason: String },
    /// Connecting to every address the host resolves to failed.
    Connect { addr: String, source: io::Error },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "socket error: {e}"),
            HttpError::Timeout(d) => write!(f, "no complete HTTP message within {d:?}"),
            HttpError::Closed => write!(f, "connection closed before a complete HTTP message"),
            HttpError::HeadTooLarge(limit) => write!(f, "HTTP headers exceed {limit} bytes"),
            HttpError::BodyTooLarge(limit) => write!(f, "HTTP body exceeds {limit} bytes"),
            HttpError::Malformed(why) => write!(f, "malformed HTTP message: {why}"),
            HttpError::BadUrl { url, reason } => write!(f, "cannot use URL {url:?}: {reason}"),
            HttpError::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Io(e) | HttpError::Connect { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// The first header named `name` (case-insensitive).
fn find_header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Reads from a stream until a fixed deadline; each read waits at most for the time left, so the
/// deadline bounds the whole message rather than the gap between two bytes.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    budget: Duration,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

impl DeadlineReader<'_> {
    /// What a failed read means for the exchange: the deadline passing, the peer closing, or a
    /// socket error.
    fn error(&self, e: io::Error) -> HttpError {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => HttpError::Timeout(self.budget),
            io::ErrorKind::UnexpectedEof => HttpError::Closed,
            _ => HttpError::Io(e),
        }
    }
}

/// Reads into `buf` until `parse` recognises a complete head, returning what it extracted.
/// `buf` may hold bytes past the head afterwards (the start of the body).
fn read_head<T>(
    reader: &mut DeadlineReader<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    mut parse: impl FnMut(&[u8]) -> Result<Option<T>, HttpError>,
) -> Result<T, HttpError> {
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(head) = parse(buf)? {
            return Ok(head);
        }
        if buf.len() >= max {
            return Err(HttpError::HeadTooLarge(max));
        }
        let want = chunk.len().min(max - buf.len());
        let n = reader
            .read(&mut chunk[..want])
            .map_err(|e| reader.error(e))?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Copies parsed headers out of the read buffer.
fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

/// Parses a `Content-Length` value, refusing anything but plain digits.
fn content_length(value: &[u8]) -> Result<usize, HttpError> {
    std::str::from_utf8(value)
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| HttpError::Malformed("invalid Content-Length".into()))
}
