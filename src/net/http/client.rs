//! The client side: one request to an `http://` URL, and its reply read back with
//! `Content-Length`, chunked or read-to-close framing.

use super::url::parse_url;
use super::{
    DeadlineReader, HttpError, MAX_HEADERS, content_length, find_header, owned_headers, read_head,
};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest response head (status line + headers) the client accepts.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Largest response body the client accepts: a tracker reply with hundreds of peers is a few KiB.
pub const MAX_RESPONSE_BODY: usize = 2 * 1024 * 1024;
/// Longest chunk-size line in a chunked reply.
const MAX_CHUNK_LINE: usize = 1024;

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

/// Sends one request to an `http://` URL and reads the whole reply. `body` is
/// `(content type, bytes)`. `timeout` bounds connecting to each address and, separately, the
/// whole exchange after connecting. Replies larger than [`MAX_RESPONSE_BODY`] are refused.
pub fn request(
    url: &str,
    method: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    request_with_headers(url, method, &[], body, timeout)
}

/// Like [`request`], with extra header lines `(name, value)` (e.g. an API token). Values must
/// not contain line breaks.
pub fn request_with_headers(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    if headers
        .iter()
        .any(|(n, v)| n.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']))
    {
        return Err(HttpError::Malformed(
            "a header name or value holds a line break".into(),
        ));
    }
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
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::http::{Limits, read_request, write_response};
    use std::net::TcpListener;
    use std::thread;

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

    /// Answers one `GET` with `raw` exactly as given and returns what the client made of it.
    fn get_raw_reply(raw: Vec<u8>) -> Result<Response, HttpError> {
        let (url, server) = one_shot(move |mut stream| {
            read_request(&stream, &Limits::default()).unwrap();
            stream.write_all(&raw).unwrap();
        });
        let result = request(&url, "GET", None, Duration::from_secs(5));
        server.join().unwrap();
        result
    }

    #[test]
    fn client_reads_http10_reply_until_close() {
        let resp = get_raw_reply(b"HTTP/1.0 200 OK\r\n\r\nd8:intervali5ee".to_vec()).unwrap();
        assert_eq!(resp.body, b"d8:intervali5ee");
    }

    #[test]
    fn client_decodes_chunked_reply() {
        let resp = get_raw_reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n"
                .to_vec(),
        )
        .unwrap();
        assert_eq!(resp.body, b"abcdefg");
    }

    #[test]
    fn client_refuses_oversized_reply() {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_RESPONSE_BODY + 1
        );
        let err = get_raw_reply(head.into_bytes()).unwrap_err();
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
}
