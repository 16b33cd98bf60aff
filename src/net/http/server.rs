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
        read_head(&mut reader, &mut buf, limits.max_head, parse_head)?;
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

/// A request head: method, target, headers and the head's length in bytes.
type Head = (String, String, Vec<(String, Vec<u8>)>, usize);

/// Parses a request head from the start of `data`; `None` while it is incomplete.
fn parse_head(data: &[u8]) -> Result<Option<Head>, HttpError> {
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
}

/// The body length the headers announce, refused when chunked or over `limits.max_body`.
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

/// Parses a whole request already in memory with the checks of [`read_request`] (for the
/// fuzzer): [`HttpError::Closed`] when `data` ends before the head or body does.
#[doc(hidden)]
pub fn parse_request(data: &[u8], limits: &Limits) -> Result<Request, HttpError> {
    let window = &data[..data.len().min(limits.max_head)];
    let (method, target, headers, head_len) = match parse_head(window)? {
        Some(head) => head,
        None if window.len() == limits.max_head => {
            return Err(HttpError::HeadTooLarge(limits.max_head));
        }
        None => return Err(HttpError::Closed),
    };
    let length = body_length(&headers, limits)?;
    let body = data
        .get(head_len..head_len + length)
        .ok_or(HttpError::Closed)?
        .to_vec();
    Ok(Request {
        method,
        target,
        headers,
        body,
    })
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
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
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        reason_phrase(status),
        body.len()
    );
    // One buffer, one write: small replies leave in a single segment.
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
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
    fn response_has_length_and_close() {
        let mut out = Vec::new();
        write_response(&mut out, 404, "application/json", b"{}").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 2\r\n") && text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }
}
