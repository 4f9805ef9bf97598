//! The API's connections (`serve.rs` accepts them). HTTP-level errors (a header block over hyper's limit → 431, a request
//! that is not HTTP → 400) are answered by hyper itself, before any handler runs, with an empty
//! body. The contract promises the JSON error body for every error, so each connection's writes
//! are watched: an answer head with a 4xx status and `content-length: 0` — which only hyper
//! produces; every handler answer has a body — is replaced by the same status with the JSON body.
//!
//! Why this and nothing better: hyper answers a request it cannot parse itself, with a fixed
//! empty body, and offers no hook to shape that answer (its builder sets limits only). Parsing
//! request heads ahead of hyper (with `httparse`) would catch the first request of a connection
//! but not a later one on a kept-alive connection without re-implementing message framing. So
//! the answer is rewritten on its way out, which depends on hyper writing a bodiless head in
//! one `poll_write` (it does: its head buffer is flushed flat, as vectored writes are refused
//! below). The hostile-input table (`tests/hostile.rs`: headers of 2 MiB, 200 headers, a TLS
//! hello, a request line without a version) pins the JSON answers, so a hyper upgrade that
//! changes how it writes fails those tests instead of silently sending empty bodies.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Note: `Conn` keeps `is_write_vectored() == false` on purpose; hyper then flattens every answer
/// into `poll_write`, which is where heads are inspected. Forwarding vectored writes would
/// silently bypass this.
pub struct Conn {
    stream: TcpStream,
    /// A replacement answer being written, how much of it has gone out, and the length of the
    /// original head it stands for (reported as written once the replacement is out).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            replacing: None,
        }
    }
}

/// The JSON answer for a bodiless 4xx answer head, or `None` to pass `head` through.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    let code: u16 = parts.next()?.parse().ok()?;
    if !version.starts_with("HTTP/1.") || !(400..500).contains(&code) || end + 4 != buf.len() {
        return None;
    }
    let empty = lines.any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("content-length") && v.trim() == "0")
    });
    if !empty {
        return None;
    }
    let (code_name, message) = match code {
        431 => ("headers_too_large", "the request headers are too large"),
        414 => ("uri_too_long", "the request URI is too long"),
        _ => ("bad_request", "the request is not valid HTTP"),
    };
    let body = serde_json::json!({"code": code_name, "message": message}).to_string();
    let reason = status_line.splitn(3, ' ').nth(2).unwrap_or("Error");
    Some(
        format!(
            "{version} {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            match replacement(buf) {
                Some(r) => self.replacing = Some((r, 0, buf.len())),
                None => return Pin::new(&mut self.stream).poll_write(cx, buf),
            }
        }
        // Write the whole replacement, then report the original head as written.
        let this = &mut *self;
        let mut head_len = buf.len();
        if let Some((bytes, done, original)) = &mut this.replacing {
            head_len = *original;
            while *done < bytes.len() {
                match Pin::new(&mut this.stream).poll_write(cx, &bytes[*done..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => *done += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        this.replacing = None;
        Poll::Ready(Ok(head_len.min(buf.len())))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn only_bodiless_4xx_heads_are_replaced() {
        let r = replacement(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n")
            .unwrap();
        let text = String::from_utf8(r).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{text}"
        );
        assert!(text.ends_with(r#"{"code":"headers_too_large","message":"the request headers are too large"}"#));
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_some());
        // Handler answers have bodies; 2xx/5xx and partial writes pass through.
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\ncontent-length: 52\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}").is_none());
        assert!(replacement(b"not http").is_none());
    }
}
