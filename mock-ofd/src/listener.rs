//! A TCP listener whose connections die while the server is `down`: new connections are reset
//! at once and established keep-alive connections are reset at their next request (an answer
//! already being written — such as the one to the request that switched `down` on — goes out).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub struct DownableListener {
    pub inner: TcpListener,
    pub down: Arc<AtomicBool>,
    /// While set, answers are not written: the connection is reset instead.
    pub drop_answers: Arc<AtomicBool>,
}

pub struct Conn {
    stream: TcpStream,
    down: Arc<AtomicBool>,
    drop_answers: Arc<AtomicBool>,
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "mock-ofd is down")
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.down.load(Ordering::Relaxed) {
            let _ = self.stream.set_zero_linger();
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.drop_answers.load(Ordering::Relaxed) {
            let _ = self.stream.set_zero_linger();
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for DownableListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.down.load(Ordering::Relaxed) {
                        // RST instead of FIN: the client sees "connection reset by peer".
                        let _ = stream.set_zero_linger();
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    return (
                        Conn {
                            stream,
                            down: self.down.clone(),
                            drop_answers: self.drop_answers.clone(),
                        },
                        addr,
                    );
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
