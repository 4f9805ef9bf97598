//! The `trickle` fault: an answer dribbled out a byte every 50 ms.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An answer dribbled out a byte every 50 ms (the `trickle` fault).
pub(crate) fn trickle(text: String) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::new(dribble::Bytes::new(text.into_bytes())))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A body that yields one byte every 50 ms.
mod dribble {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    pub struct Bytes {
        bytes: Vec<u8>,
        at: usize,
        sleep: Pin<Box<tokio::time::Sleep>>,
    }

    impl Bytes {
        pub fn new(bytes: Vec<u8>) -> Bytes {
            Bytes {
                bytes,
                at: 0,
                sleep: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
            }
        }
    }

    impl http_body::Body for Bytes {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            if self.at >= self.bytes.len() {
                return Poll::Ready(None);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let next = tokio::time::Instant::now() + Duration::from_millis(50);
            self.sleep.as_mut().reset(next);
            let byte = self.bytes[self.at];
            self.at += 1;
            Poll::Ready(Some(Ok(http_body::Frame::data(axum::body::Bytes::from(vec![byte])))))
        }
    }
}
