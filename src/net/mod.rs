//! Plumbing shared by the servers and clients: HTTP/1.1 requests and responses, and the fixed
//! worker pool.

pub mod http;
pub mod pool;
