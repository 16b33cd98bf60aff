//! Serving one connection: read one bounded request, answer it, close. A request that cannot
//! be read still gets a reply when there is one to give (408, 413, 431, 400).

use super::routes::{Reply, Service, route};
use crate::net::http::{self, HttpError};
use log::debug;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Time allowed for writing a reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one connection: one request, one reply, close.
pub(super) fn serve(mut stream: TcpStream, service: &Service) {
    let remote = match stream.peer_addr() {
        Ok(addr) => addr,
        Err(e) => {
            debug!("connection gone before it was served: {e}");
            return;
        }
    };
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let (reply, clean) = match http::read_request(&stream, &service.limits) {
        Ok(request) => {
            let reply = route(
                &request,
                remote.ip().to_canonical(),
                service,
                Instant::now(),
            );
            debug!(
                "{remote} {} {} -> {}{}",
                request.method,
                request.path(),
                reply.status,
                reply
                    .failure
                    .as_deref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default()
            );
            (reply, true)
        }
        Err(e) => {
            debug!("{remote}: bad request: {e}");
            let reply = match e {
                HttpError::HeadTooLarge(_) => Reply::json_failure(431, &e.to_string()),
                HttpError::BodyTooLarge(_) => Reply::json_failure(413, &e.to_string()),
                HttpError::Malformed(_) => Reply::json_failure(400, &e.to_string()),
                HttpError::Timeout(_) => Reply::json_failure(408, &e.to_string()),
                _ => return,
            };
            (reply, false)
        }
    };
    if let Err(e) = http::write_response(&mut stream, reply.status, reply.content_type, &reply.body)
    {
        debug!("{remote}: cannot send reply: {e}");
        return;
    }
    if !clean {
        linger(&mut stream);
    }
}

/// After an error reply, reads (for at most 200 ms and 256 KiB) what the client is still
/// sending: closing a socket with unread input resets the connection, which can destroy the reply
/// in flight.
fn linger(stream: &mut TcpStream) {
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
