//! The server side: reading one bounded request from a connection and writing the reply.

use super::{
    DeadlineReader, HttpError, MAX_HEADERS, content_length, find_header, owned_headers, read_head,
};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Bounds applied by [`read_request`].
#[derive(Clone, Debug)]
pub struct Limits {
    /// Request line plus headers, in bytes.
    pub max_head: usize,
    /// Body (`Content-Length`), in bytes.
    pub max_body: usize,
    /// Time allowed for the whole request to arrive, counted from the call.
    pub deadline: Duration,
}

impl Default for Limits {
    /// 8 KiB of headers, 64 KiB of body, 5 seconds.
    fn default() -> Limits {
        Limits {
            max_head: 8 * 1024,
            max_body: 64 * 1024,
            deadline: Duration::from_secs(5),
        }
    }
}

/// A parsed request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent, e.g. `/announce?info_hash=...`.
    pub target: String,
    /// Header names as sent with raw values.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(path, _)| path)
    }

    /// The raw query string (after `?`), empty when there is none.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }
}

/// Reads one request from `stream` within `limits`. Bodies must be framed by `Content-Length`
/// (chunked request bodies are refused as malformed).
pub fn read_request(stream: &TcpStream, limits: &Limits) -> Result<Request, HttpError> {
    let mut reader = DeadlineReader {
        stream,
        deadline: Instant::now() + limits.deadline,
        budget: limits.deadline,
    };
    let mut buf = Vec::with_capacity(1024);
    let (method, target, headers, head_len) =
        read_head(&mut reader, &mut buf, limits.max_head, |data| {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut slots);
            match req.parse(data) {
                Ok(httparse::Status::Complete(len)) => Ok(Some((
                    req.method.unwrap_or_default().to_string(),
                    req.path.unwrap_or_default().to_string(),
                    owned_headers(req.headers),
                    len,
                ))),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(e) => Err(HttpError::Malformed(e.to_string())),
            }
        })?;
    let length = body_length(&headers, limits)?;
    let mut body = buf.split_off(head_len);
    body.truncate(length);
    if body.len() < length {
        // curl holds back larger bodies for a second unless told to go ahead.
        let expects_continue = find_header(&headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        if expects_continue {
            let mut writer = stream;
            writer
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(HttpError::Io)?;
        }
        let start = body.len();
        body.resize(length, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|e| reader.error(e))?;
    }
    Ok(Request {
        method,
        target,
        headers,
        body,
    })
}

/// The body length a request's headers announce, within `limits`; bodies must be framed by
/// `Content-Length` (chunked request bodies are refused as malformed).
fn body_length(headers: &[(String, Vec<u8>)], limits: &Limits) -> Result<usize, HttpError> {
    if find_header(headers, "transfer-encoding").is_some() {
        return Err(HttpError::Malformed(
            "chunked request bodies are not supported".into(),
        ));
    }
    let length = match find_header(headers, "content-length") {
        Some(value) => content_length(value)?,
        None => 0,
    };
    if length > limits.max_body {
        return Err(HttpError::BodyTooLarge(limits.max_body));
    }
    Ok(length)
}

/// What [`parse_request`] found in a buffer holding the start of a connection's input.
#[derive(Debug)]
pub enum Parsed {
    /// The request is not complete yet; `continue_now` is set when its head has just arrived
    /// with `Expect: 100-continue` and the client waits for a go-ahead before sending the body.
    Partial { continue_now: bool },
    /// A whole request, the bytes it took from the buffer, and whether the client wants the
    /// connection kept open for another (HTTP/1.1 without `Connection: close`).
    Complete {
        request: Request,
        used: usize,
        keep_alive: bool,
    },
}

/// Parses one request from the front of `buf` without reading anything: the non-blocking
/// counterpart of [`read_request`], for a server that gathers input from many connections
/// itself. The same bounds apply (head size, body size, no chunked bodies).
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return Err(HttpError::HeadTooLarge(limits.max_head));
        }
        Ok(httparse::Status::Partial) => {
            return Ok(Parsed::Partial {
                continue_now: false,
            });
        }
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    if head_len > limits.max_head {
        return Err(HttpError::HeadTooLarge(limits.max_head));
    }
    let headers = owned_headers(req.headers);
    let length = body_length(&headers, limits)?;
    if buf.len() < head_len + length {
        let expects_continue = find_header(&headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        // Only on the first look after the head arrived, i.e. when no body byte is here yet.
        return Ok(Parsed::Partial {
            continue_now: expects_continue && buf.len() == head_len,
        });
    }
    let connection = find_header(&headers, "connection").unwrap_or_default();
    let keep_alive = if req.version == Some(0) {
        connection.eq_ignore_ascii_case(b"keep-alive")
    } else {
        !connection.eq_ignore_ascii_case(b"close")
    };
    Ok(Parsed::Complete {
        request: Request {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            headers,
            body: buf[head_len..head_len + length].to_vec(),
        },
        used: head_len + length,
        keep_alive,
    })
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a complete response with `Connection: close`; the caller closes the stream after.
pub fn write_response(
    stream: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    write_reply(stream, status, content_type, body, false)
}

/// Writes a complete response, saying `Connection: keep-alive` when `keep_alive` (the caller
/// then reads the next request from the stream) and `Connection: close` otherwise.
pub fn write_reply(
    stream: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    write_reply_with(stream, status, content_type, &[], body, keep_alive)
}

/// [`write_reply`] with `extra` header lines (name, value) after the standard ones, e.g. the
/// `Allow` a 405 must carry.
pub fn write_reply_with(
    stream: &mut impl Write,
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: {connection}\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // One buffer, one write: small replies leave in a single segment.
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}

/// After an error reply, reads (for at most 200 ms and 256 KiB) what the client is still
/// sending: closing a socket with unread input resets the connection, which can destroy the reply
/// in flight.
pub fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + Duration::from_millis(200);
    let mut budget: usize = 256 * 1024;
    let mut scratch = [0u8; 4096];
    while budget > 0 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => budget = budget.saturating_sub(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// Connects a client that writes `parts` with `gap` between them, then holds the connection.
    fn trickle(parts: Vec<Vec<u8>>, gap: Duration) -> (TcpStream, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            for part in parts {
                if s.write_all(&part).is_err() {
                    return;
                }
                thread::sleep(gap);
            }
        });
        let (stream, _) = listener.accept().unwrap();
        (stream, client)
    }

    #[test]
    fn server_deadline_bounds_a_trickling_client() {
        let parts = b"GET /announce HTTP/1.1\r\n"
            .iter()
            .map(|&b| vec![b])
            .collect();
        let (stream, client) = trickle(parts, Duration::from_millis(40));
        let limits = Limits {
            deadline: Duration::from_millis(300),
            ..Limits::default()
        };
        let started = Instant::now();
        let err = read_request(&stream, &limits).unwrap_err();
        assert!(matches!(err, HttpError::Timeout(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
        drop(stream);
        client.join().unwrap();
    }

    #[test]
    fn server_bounds_head_and_body() {
        let big_head = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000)).into_bytes();
        let (stream, client) = trickle(vec![big_head], Duration::ZERO);
        let err = read_request(&stream, &Limits::default()).unwrap_err();
        assert!(matches!(err, HttpError::HeadTooLarge(8192)), "{err}");
        drop(stream);
        client.join().unwrap();

        let big_body = b"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n".to_vec();
        let (stream, client) = trickle(vec![big_body], Duration::ZERO);
        let err = read_request(&stream, &Limits::default()).unwrap_err();
        assert!(matches!(err, HttpError::BodyTooLarge(65536)), "{err}");
        drop(stream);
        client.join().unwrap();
    }

    #[test]
    fn server_reads_body_split_across_packets() {
        let parts = vec![
            b"POST /x?a=1 HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123".to_vec(),
            b"456789".to_vec(),
        ];
        let (stream, client) = trickle(parts, Duration::from_millis(20));
        let req = read_request(&stream, &Limits::default()).unwrap();
        assert_eq!((req.path(), req.query()), ("/x", "a=1"));
        assert_eq!(req.body, b"0123456789");
        drop(stream);
        client.join().unwrap();
    }

    #[test]
    fn server_sends_100_continue_when_asked() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut interim = [0u8; 25];
            s.read_exact(&mut interim).unwrap();
            assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
            s.write_all(b"abc").unwrap();
        });
        let (stream, _) = listener.accept().unwrap();
        let req = read_request(&stream, &Limits::default()).unwrap();
        assert_eq!(req.body, b"abc");
        client.join().unwrap();
    }

    #[test]
    fn server_rejects_garbage_and_early_close() {
        let (stream, client) = trickle(vec![b"\x00\x01 not http\r\n\r\n".to_vec()], Duration::ZERO);
        assert!(matches!(
            read_request(&stream, &Limits::default()),
            Err(HttpError::Malformed(_))
        ));
        drop(stream);
        client.join().unwrap();

        let (stream, client) = trickle(vec![b"GET / HT".to_vec()], Duration::ZERO);
        client.join().unwrap();
        assert!(matches!(
            read_request(&stream, &Limits::default()),
            Err(HttpError::Closed)
        ));
    }

    #[test]
    fn parse_request_waits_for_head_and_body_then_reports_keep_alive() {
        let limits = Limits::default();
        let full = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
        for cut in [0, 10, 38, 40] {
            assert!(matches!(
                parse_request(&full[..cut], &limits),
                Ok(Parsed::Partial { .. })
            ));
        }
        match parse_request(full, &limits).unwrap() {
            Parsed::Complete {
                request,
                used,
                keep_alive,
            } => {
                assert_eq!((request.path(), &request.body[..]), ("/a", &b"abc"[..]));
                assert_eq!(used, full.len() - 3);
                assert!(keep_alive);
            }
            other => panic!("{other:?}"),
        }
        let old = b"GET / HTTP/1.0\r\n\r\n";
        let close = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        for text in [&old[..], &close[..]] {
            assert!(matches!(
                parse_request(text, &limits),
                Ok(Parsed::Complete {
                    keep_alive: false,
                    ..
                })
            ));
        }
        let expect = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert!(matches!(
            parse_request(expect, &limits),
            Ok(Parsed::Partial { continue_now: true })
        ));
    }

    #[test]
    fn parse_request_bounds_head_and_body() {
        let limits = Limits::default();
        let endless = vec![b'a'; 9000];
        assert!(matches!(
            parse_request(&endless, &limits),
            Err(HttpError::Malformed(_) | HttpError::HeadTooLarge(_))
        ));
        let long = format!("GET /{} HTTP/1.1\r\nX: y", "a".repeat(9000));
        assert!(matches!(
            parse_request(long.as_bytes(), &limits),
            Err(HttpError::HeadTooLarge(8192))
        ));
        let big = b"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n";
        assert!(matches!(
            parse_request(big, &limits),
            Err(HttpError::BodyTooLarge(65536))
        ));
    }

    #[test]
    fn response_has_length_and_close() {
        let mut out = Vec::new();
        write_response(&mut out, 404, "application/json", b"{}").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 2\r\n") && text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }

    #[test]
    fn extra_headers_go_in_the_head() {
        let mut out = Vec::new();
        write_reply_with(
            &mut out,
            405,
            "application/json",
            &[("Allow", "GET, POST")],
            b"{}",
            false,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("\r\nAllow: GET, POST\r\n"), "{text}");
        assert!(text.ends_with("Connection: close\r\nAllow: GET, POST\r\n\r\n{}"));
    }
}
