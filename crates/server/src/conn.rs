//! What guards the connection loop: a cap on open connections with a share per client
//! address (so one address can't take them all), and the answers hyper gives by itself
//! to requests it can't parse, rewritten as problem documents with a request id.
//!
//! Timeouts are hyper's: with a timer, HTTP/1 connections must send a request's headers
//! within `HEADER_READ_TIMEOUT` of waiting for them, which closes silent new
//! connections, slow header senders and idle keep-alive connections alike.

use crate::http::new_request_id;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::io::IoSlice;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every connection of the server is taken.
    Full,
    /// The client's address has its share.
    ClientShare,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Full => "server_full",
            Refusal::ClientShare => "client_share",
        }
    }

    /// What the refused client is told before the connection closes.
    pub fn answer(self) -> Vec<u8> {
        let (status, code, detail, retry) = match self {
            Refusal::Full => (
                "503 Service Unavailable",
                "server_busy",
                "the server has no connection to spare; try again",
                2,
            ),
            Refusal::ClientShare => (
                "429 Too Many Requests",
                "too_many_connections",
                "your address has too many open connections; close some and try again",
                2,
            ),
        };
        let code_num = &status[..3];
        let body = format!(
            r#"{{"type":"urn:hoplink:problem:{code}","title":"{}","status":{code_num},"detail":"{detail}","code":"{code}"}}"#,
            &status[4..]
        );
        raw_problem(status, &body, &[("retry-after", &retry.to_string())])
    }
}

/// A whole HTTP/1.1 problem answer that closes the connection.
fn raw_problem(status_line: &str, body: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let id = new_request_id();
    let mut out = format!(
        "HTTP/1.1 {status_line}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nx-request-id: {}\r\nconnection: close\r\n",
        body.len(),
        id.to_str().unwrap_or("unknown")
    );
    for (name, value) in extra {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// The connection cap and the per-address share.
#[derive(Debug)]
pub struct Gate {
    total: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, u32>>,
    per_client_max: u32,
    last_warning: AtomicU64,
}

/// An admitted connection: its place is given back when it is dropped.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    gate: Arc<Gate>,
    client: Option<IpAddr>,
    metrics: Arc<Metrics>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.metrics.connection_closed();
        if let Some(ip) = self.client {
            let mut counts = self
                .gate
                .per_client
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(n) = counts.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

impl Gate {
    /// At most `total` connections, at most `per_client` from one address.
    pub fn new(total: usize, per_client: u32) -> Arc<Gate> {
        Arc::new(Gate {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_client: Mutex::new(HashMap::new()),
            per_client_max: per_client.max(1),
            last_warning: AtomicU64::new(0),
        })
    }

    /// Admits a connection from `ip`, or says why not. `shared` addresses (trusted
    /// proxies, which carry many clients) count against the total only.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        shared: bool,
        metrics: &Arc<Metrics>,
    ) -> Result<Ticket, Refusal> {
        let refuse = |why: Refusal| {
            metrics.connection_refused(why);
            self.warn(why, ip);
            Err(why)
        };
        let Ok(permit) = self.total.clone().try_acquire_owned() else {
            return refuse(Refusal::Full);
        };
        let client = if shared {
            None
        } else {
            let mut counts = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(ip).or_default();
            if *n >= self.per_client_max {
                drop(counts);
                return refuse(Refusal::ClientShare);
            }
            *n += 1;
            Some(ip)
        };
        metrics.connection_opened();
        Ok(Ticket {
            _permit: permit,
            gate: self.clone(),
            client,
            metrics: metrics.clone(),
        })
    }

    /// One warning a second at most: a flood must not flood the log too.
    fn warn(&self, why: Refusal, ip: IpAddr) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.last_warning.swap(now, Ordering::Relaxed) != now {
            match why {
                Refusal::Full => tracing::warn!(
                    %ip,
                    "connection refused: every connection is taken (MAX_CONNECTIONS)"
                ),
                Refusal::ClientShare => tracing::warn!(
                    %ip,
                    max = self.per_client_max,
                    "connection refused: this address has its share (MAX_CONNECTIONS_PER_IP)"
                ),
            }
        }
    }
}

/// The soft limit of open files of this process, when the system tells.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A connection's I/O that replaces the answers hyper writes by itself when it can't
/// parse a request (400, 414, 431: a status line and headers, no body) with problem
/// documents carrying a request id, as every other answer does. The server's own 4xx
/// answers always have a body, so an empty one is hyper's.
pub struct ProblemIo<T> {
    inner: T,
    /// A replacement being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> ProblemIo<T> {
    /// Wraps a connection's I/O.
    pub fn new(inner: T) -> Self {
        ProblemIo {
            inner,
            pending: None,
        }
    }
}

/// The problem answer to put in place of `head`, when it is one of hyper's own.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let status = head.strip_prefix(b"HTTP/1.1 ")?;
    if !status.starts_with(b"4") || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let lower = text.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status_line = text.lines().next()?.strip_prefix("HTTP/1.1 ")?;
    let (code, detail) = match &status_line[..3] {
        "431" => (
            "header_fields_too_large",
            "the request's headers are too large",
        ),
        "414" => ("uri_too_long", "the request's URI is too long"),
        _ => (
            "bad_request",
            "the request is not valid HTTP (request line, header or length)",
        ),
    };
    let body = format!(
        r#"{{"type":"urn:hoplink:problem:{code}","title":"{}","status":{},"detail":"{detail}","code":"{code}"}}"#,
        &status_line[4..],
        &status_line[..3]
    );
    Some(raw_problem(status_line, &body, &[]))
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes the pending replacement out; `Ready(Ok(n))` with the length of the head it
    /// stands for once all of it is written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        while let Some((bytes, written, stands_for)) = &mut self.pending {
            if *written == bytes.len() {
                let n = *stands_for;
                self.pending = None;
                return Poll::Ready(Ok(n));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match replacement(buf) {
                Some(bytes) => this.pending = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        this.poll_replacement(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
            match (non_empty.next(), non_empty.next()) {
                (Some(only), None) if replacement(only).is_some() => {
                    return Pin::new(this).poll_write(cx, &only[..]);
                }
                _ => return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            }
        }
        this.poll_replacement(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_answers_become_problem_documents() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\n";
        let replaced = String::from_utf8(replacement(head).unwrap()).unwrap();
        assert!(replaced.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(replaced.contains("content-type: application/problem+json\r\n"));
        assert!(replaced.contains("x-request-id: "));
        assert!(replaced.ends_with(r#""code":"header_fields_too_large"}"#));
        let bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(bad).is_some());
        // The server's own answers have bodies, and successes are never touched.
        for own in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-length: 120\r\n\r\n"[..],
            b"HTTP/1.1 302 Found\r\nlocation: https://e.com/\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ] {
            assert!(replacement(own).is_none());
        }
    }

    #[tokio::test]
    async fn the_gate_keeps_a_share_per_address() {
        let metrics = Arc::new(Metrics::default());
        let gate = Gate::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = gate.admit(a, false, &metrics).unwrap();
        let _second = gate.admit(a, false, &metrics).unwrap();
        assert_eq!(
            gate.admit(a, false, &metrics).unwrap_err(),
            Refusal::ClientShare
        );
        let _third = gate.admit(b, false, &metrics).unwrap();
        assert_eq!(gate.admit(b, false, &metrics).unwrap_err(), Refusal::Full);
        drop(first);
        assert!(
            gate.admit(a, false, &metrics).is_ok(),
            "a closed connection gives its place back"
        );
    }
}
