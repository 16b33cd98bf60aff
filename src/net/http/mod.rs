//! Minimal HTTP/1.1 over blocking `TcpStream`s, shared by the tracker server and the announce
//! client.
//!
//! Only what trackers need: one request per connection (`Connection: close` both ways), bodies
//! framed by `Content-Length` (server side), and on the client side `Content-Length`, chunked or
//! read-to-close replies (opentracker answers HTTP/1.0 style and closes). Every read is bounded in
//! size and in time: a peer that trickles bytes cannot hold a thread past the deadline.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Most header lines accepted in one request or response.
const MAX_HEADERS: usize = 48;
/// Largest response head (status line + headers) the client accepts.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Largest response body the client accepts: a tracker reply with hundreds of peers is a few KiB.
pub const MAX_RESPONSE_BODY: usize = 2 * 1024 * 1024;
/// Longest chunk-size line in a chunked reply.
const MAX_CHUNK_LINE: usize = 1024;

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

/// A reply received by [`request`].
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }
}

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
    if find_header(&headers, "transfer-encoding").is_some() {
        return Err(HttpError::Malformed(
            "chunked request bodies are not supported".into(),
        ));
    }
    let length = match find_header(&headers, "content-length") {
        Some(value) => content_length(value)?,
        None => 0,
    };
    if length > limits.max_body {
        return Err(HttpError::BodyTooLarge(limits.max_body));
    }
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

/// The parts of an `http://` URL needed to send a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
    /// Path plus query, always starting with `/`.
    pub target: String,
}

/// Splits an `http://host[:port][/path][?query]` URL; other schemes are refused with a reason.
pub fn parse_url(url: &str) -> Result<HttpUrl, HttpError> {
    let bad = |reason: &str| HttpError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if scheme.eq_ignore_ascii_case("https") {
        return Err(bad(
            "https is not supported (no TLS); use an http:// tracker",
        ));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(bad(&format!(
            "scheme {scheme}:// is not supported, only http://"
        )));
    }
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    let target = target.split('#').next().unwrap_or_default();
    let target = match target.strip_prefix('?') {
        Some(query) => format!("/?{query}"),
        None if target.is_empty() => "/".to_string(),
        None => target.to_string(),
    };
    if authority.contains('@') {
        return Err(bad("user info in tracker URLs is not supported"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(port) => port.parse().map_err(|_| bad("invalid port"))?,
        None => 80,
    };
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        target,
    })
}

/// Sends one request to an `http://` URL and reads the whole reply. `body` is
/// `(content type, bytes)`. `timeout` bounds connecting to each address and, separately, the
/// whole exchange after connecting. Replies larger than [`MAX_RESPONSE_BODY`] are refused.
pub fn request(
    url: &str,
    method: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let parsed = parse_url(url)?;
    let addr_text = format!("{}:{}", parsed.host, parsed.port);
    let addrs: Vec<SocketAddr> = (parsed.host.as_str(), parsed.port)
        .to_socket_addrs()
        .map_err(|source| HttpError::Connect {
            addr: addr_text.clone(),
            source,
        })?
        .collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = e,
        }
    }
    let stream = stream.ok_or(HttpError::Connect {
        addr: addr_text.clone(),
        source: last_error,
    })?;
    let deadline = Instant::now() + timeout;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(HttpError::Io)?;

    let host_header = if parsed.host.contains(':') {
        format!("[{}]:{}", parsed.host, parsed.port)
    } else {
        format!("{}:{}", parsed.host, parsed.port)
    };
    let mut out = format!(
        "{method} {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: piecemeal/{}\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n",
        parsed.target,
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();
    if let Some((content_type, bytes)) = body {
        out.extend_from_slice(
            format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                bytes.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(bytes);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    (&stream).write_all(&out).map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => HttpError::Timeout(timeout),
        _ => HttpError::Io(e),
    })?;

    let mut reader = DeadlineReader {
        stream: &stream,
        deadline,
        budget: timeout,
    };
    read_response(&mut reader)
}

fn read_response(reader: &mut DeadlineReader<'_>) -> Result<Response, HttpError> {
    let mut buf = Vec::with_capacity(2048);
    let (status, headers, head_len) = read_head(reader, &mut buf, MAX_RESPONSE_HEAD, |data| {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        match resp.parse(data) {
            Ok(httparse::Status::Complete(len)) => Ok(Some((
                resp.code.unwrap_or_default(),
                owned_headers(resp.headers),
                len,
            ))),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(e) => Err(HttpError::Malformed(e.to_string())),
        }
    })?;
    let leftover = buf.split_off(head_len);
    let chunked = find_header(&headers, "transfer-encoding").is_some_and(|v| {
        String::from_utf8_lossy(v)
            .to_ascii_lowercase()
            .contains("chunked")
    });
    let body = if status == 204 || status == 304 {
        Vec::new()
    } else if chunked {
        read_chunked(leftover, reader)?
    } else if let Some(value) = find_header(&headers, "content-length") {
        let length = content_length(value)?;
        if length > MAX_RESPONSE_BODY {
            return Err(HttpError::BodyTooLarge(MAX_RESPONSE_BODY));
        }
        let mut body = leftover;
        body.truncate(length);
        let start = body.len();
        body.resize(length, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|e| reader.error(e))?;
        body
    } else {
        read_to_close(leftover, reader)?
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Reads until the peer closes, refusing more than [`MAX_RESPONSE_BODY`] bytes.
fn read_to_close(mut body: Vec<u8>, reader: &mut DeadlineReader<'_>) -> Result<Vec<u8>, HttpError> {
    if body.len() > MAX_RESPONSE_BODY {
        return Err(HttpError::BodyTooLarge(MAX_RESPONSE_BODY));
    }
    let limit = (MAX_RESPONSE_BODY - body.len()) as u64 + 1;
    reader
        .take(limit)
        .read_to_end(&mut body)
        .map_err(|e| reader.error(e))?;
    if body.len() > MAX_RESPONSE_BODY {
        return Err(HttpError::BodyTooLarge(MAX_RESPONSE_BODY));
    }
    Ok(body)
}

/// Decodes a chunked body whose first bytes are already in `start`.
fn read_chunked(start: Vec<u8>, reader: &mut DeadlineReader<'_>) -> Result<Vec<u8>, HttpError> {
    let mut chunks = Chunked {
        data: start,
        pos: 0,
    };
    let mut body = Vec::new();
    loop {
        let line = chunks.line(reader)?;
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| HttpError::Malformed("invalid chunk size".into()))?;
        if size == 0 {
            // Trailers end with an empty line; nothing in them matters here.
            while !chunks.line(reader)?.is_empty() {}
            return Ok(body);
        }
        if size > MAX_RESPONSE_BODY - body.len() {
            return Err(HttpError::BodyTooLarge(MAX_RESPONSE_BODY));
        }
        chunks.fill(reader, size + 2)?;
        body.extend_from_slice(&chunks.data[chunks.pos..chunks.pos + size]);
        if &chunks.data[chunks.pos + size..chunks.pos + size + 2] != b"\r\n" {
            return Err(HttpError::Malformed("chunk not followed by CRLF".into()));
        }
        chunks.pos += size + 2;
    }
}

/// Buffered bytes of a chunked body with a read position.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
}

impl Chunked {
    /// Makes at least `want` unread bytes available.
    fn fill(&mut self, reader: &mut DeadlineReader<'_>, want: usize) -> Result<(), HttpError> {
        self.data.drain(..self.pos);
        self.pos = 0;
        let mut chunk = [0u8; 4096];
        while self.data.len() < want {
            let n = reader.read(&mut chunk).map_err(|e| reader.error(e))?;
            if n == 0 {
                return Err(HttpError::Closed);
            }
            self.data.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }

    /// The next CRLF-terminated line, without the CRLF.
    fn line(&mut self, reader: &mut DeadlineReader<'_>) -> Result<Vec<u8>, HttpError> {
        loop {
            let unread = &self.data[self.pos..];
            if let Some(end) = unread.windows(2).position(|w| w == b"\r\n") {
                let line = unread[..end].to_vec();
                self.pos += end + 2;
                return Ok(line);
            }
            if unread.len() > MAX_CHUNK_LINE {
                return Err(HttpError::Malformed("chunk size line too long".into()));
            }
            let have = unread.len();
            self.fill(reader, have + 1)?;
        }
    }
}

/// Percent-encodes raw bytes for a query string, keeping only RFC 3986 unreserved characters.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes into raw bytes. `+` stays `+`: tracker parameters are binary, and
/// clients escape a literal `+` byte.
pub fn percent_decode(text: &str) -> Result<Vec<u8>, HttpError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| HttpError::Malformed(format!("bad percent escape in {text:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Splits a query string into decoded `(name, value)` pairs in order; names are decoded lossily
/// to text, values stay raw bytes. Repeated names (scrape's `info_hash`) all appear.
pub fn parse_query(query: &str) -> Result<Vec<(String, Vec<u8>)>, HttpError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = String::from_utf8_lossy(&percent_decode(name)?).into_owned();
            Ok((name, percent_decode(value)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn percent_round_trip_covers_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let encoded = percent_encode(&all);
        assert!(encoded.is_ascii());
        assert!(!encoded.contains(['&', '=', '+', ' ', '?']));
        assert_eq!(percent_decode(&encoded).unwrap(), all);
    }

    #[test]
    fn percent_decode_rejects_bad_escapes_and_keeps_plus() {
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%zz").is_err());
        assert_eq!(percent_decode("a+b%20").unwrap(), b"a+b ");
    }

    #[test]
    fn query_keeps_repeated_names_and_raw_bytes() {
        let pairs = parse_query("info_hash=%00%FF&info_hash=ab&empty&x=").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("info_hash".to_string(), vec![0, 255]),
                ("info_hash".to_string(), b"ab".to_vec()),
                ("empty".to_string(), vec![]),
                ("x".to_string(), vec![]),
            ]
        );
    }

    #[test]
    fn urls_split_into_host_port_target() {
        let u = parse_url("http://tracker.example:6969/announce?passkey=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("tracker.example", 6969));
        assert_eq!(u.target, "/announce?passkey=1");
        let u = parse_url("HTTP://[::1]/a#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 80, "/a")
        );
        assert_eq!(parse_url("http://h").unwrap().target, "/");
        let err = parse_url("https://h/announce").unwrap_err().to_string();
        assert!(err.contains("https") && err.contains("TLS"), "{err}");
        assert!(
            parse_url("udp://h:80")
                .unwrap_err()
                .to_string()
                .contains("udp")
        );
        assert!(parse_url("http://h:99999/").is_err());
        assert!(parse_url("http:///x").is_err());
    }

    /// Runs `serve` on one accepted connection of a fresh loopback listener.
    fn one_shot(
        serve: impl FnOnce(TcpStream) + Send + 'static,
    ) -> (String, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve(stream);
        });
        (url, handle)
    }

    #[test]
    fn client_and_server_exchange_a_post() {
        let (url, server) = one_shot(|mut stream| {
            let req = read_request(&stream, &Limits::default()).unwrap();
            assert_eq!((req.method.as_str(), req.path()), ("POST", "/announce"));
            assert_eq!(req.header("content-type"), Some(&b"application/json"[..]));
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&req.body);
            write_response(&mut stream, 200, "text/plain", &reply).unwrap();
        });
        let resp = request(
            &url,
            "POST",
            Some(("application/json", b"{}")),
            Duration::from_secs(5),
        )
        .unwrap();
        server.join().unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"echo:{}");
    }

    #[test]
    fn client_reads_http10_reply_until_close() {
        let (url, server) = one_shot(|mut stream| {
            read_request(&stream, &Limits::default()).unwrap();
            stream
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nd8:intervali5ee")
                .unwrap();
        });
        let resp = request(&url, "GET", None, Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        assert_eq!(resp.body, b"d8:intervali5ee");
    }

    #[test]
    fn client_decodes_chunked_reply() {
        let (url, server) = one_shot(|mut stream| {
            read_request(&stream, &Limits::default()).unwrap();
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n",
                )
                .unwrap();
        });
        let resp = request(&url, "GET", None, Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        assert_eq!(resp.body, b"abcdefg");
    }

    #[test]
    fn client_refuses_oversized_reply() {
        let (url, server) = one_shot(|mut stream| {
            read_request(&stream, &Limits::default()).unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                MAX_RESPONSE_BODY + 1
            );
            let _ = stream.write_all(head.as_bytes());
        });
        let err = request(&url, "GET", None, Duration::from_secs(5)).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, HttpError::BodyTooLarge(_)), "{err}");
    }

    #[test]
    fn client_times_out_on_silent_server() {
        let (url, server) = one_shot(|stream| {
            thread::sleep(Duration::from_millis(600));
            drop(stream);
        });
        let started = Instant::now();
        let err = request(&url, "GET", None, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, HttpError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_millis(550));
        server.join().unwrap();
    }

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
