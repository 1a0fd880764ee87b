//! One HTTP/1.1 exchange over a fresh connection, shared by `send` and `listen --forward-to`.
//!
//! A receiver may answer before it has read the whole body (a 413 decided from
//! `Content-Length`) and close the connection; writing the rest then fails. The answer is
//! already on its way, so a failed write is noted and the rest of the request discarded, and
//! the answer is read and reported as what the receiver said.

use std::{
    fmt,
    io::{self, IoSlice},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    task::JoinHandle,
};

use crate::Failure;

/// Where to post: an `http://` URL taken apart.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) authority: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: Uri,
}

impl Target {
    /// An `http://HOST[:PORT]/PATH` URL; anything else is a usage error.
    pub(crate) fn parse(url: &str) -> Result<Self, Failure> {
        let bad = |why: &str| Failure::usage(format!("bad URL {url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("only plain http:// is supported")),
            _ => return Err(bad("expected http://HOST[:PORT]/PATH")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(Self {
            authority: authority.to_string(),
            host: authority.host().trim_matches(['[', ']']).to_owned(),
            port: authority.port_u16().unwrap_or(80),
            path: path.parse().map_err(|_| bad("bad path"))?,
        })
    }
}

/// The receiver stopped taking the request before all of it was written.
#[derive(Debug)]
pub(crate) struct Cut {
    /// Bytes of the request (head and body) written before the connection refused more.
    pub(crate) written: u64,
    /// Why the next write failed.
    pub(crate) error: io::Error,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the receiver closed the connection after {} bytes of the request ({})",
            self.written, self.error
        )
    }
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) response: Response<Bytes>,
    /// Set when the answer came before the receiver had taken the whole request.
    pub(crate) cut: Option<Cut>,
}

/// Why no answer came.
#[derive(Debug)]
pub(crate) enum Broken {
    Connect(String, io::Error),
    Handshake(hyper::Error),
    NoResponse(hyper::Error, Option<Cut>),
    Body(hyper::Error),
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(authority, error) => write!(f, "cannot connect to {authority}: {error}"),
            Self::Handshake(error) => write!(f, "HTTP handshake failed: {error}"),
            Self::NoResponse(_, Some(cut)) => write!(f, "no response: {cut}"),
            Self::NoResponse(error, None) => write!(f, "no response: {error}"),
            Self::Body(error) => write!(f, "the response body broke off: {error}"),
        }
    }
}

/// Sends `request` to `target` and reads the whole answer. Dropping the future (a timeout)
/// closes the connection.
pub(crate) async fn exchange(
    target: &Target,
    request: Request<Full<Bytes>>,
) -> Result<Answer, Broken> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|error| Broken::Connect(target.authority.clone(), error))?;
    let writes = Arc::new(Mutex::new(Writes::default()));
    let io = TokioIo::new(Tolerant {
        stream,
        writes: Arc::clone(&writes),
    });
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(Broken::Handshake)?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let cut = || {
        let mut writes = writes.lock().unwrap_or_else(PoisonError::into_inner);
        let written = writes.written;
        writes.failed.take().map(|error| Cut { written, error })
    };
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(error) => return Err(Broken::NoResponse(error, cut())),
    };
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(Broken::Body)?.to_bytes();
    Ok(Answer {
        response: Response::from_parts(parts, body),
        cut: cut(),
    })
}

/// Aborts the connection task when the exchange ends or is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug, Default)]
struct Writes {
    written: u64,
    failed: Option<io::Error>,
}

/// A TCP stream whose writes, once the peer has closed its side, succeed without sending, so
/// that the answer already on its way is still read.
struct Tolerant {
    stream: TcpStream,
    writes: Arc<Mutex<Writes>>,
}

impl Tolerant {
    /// Counts what was written; a write the closed connection refused is noted and reported
    /// as done.
    fn account(&self, result: Poll<io::Result<usize>>, len: usize) -> Poll<io::Result<usize>> {
        let mut writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Poll::Ready(Ok(n)) => {
                writes.written += n as u64;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(error)) if closed(&error) => {
                writes.failed = Some(error);
                Poll::Ready(Ok(len))
            }
            other => other,
        }
    }

    fn cut(&self) -> bool {
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failed
            .is_some()
    }
}

fn closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

impl AsyncRead for Tolerant {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tolerant {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.cut() {
            return Poll::Ready(Ok(buf.len()));
        }
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.account(result, buf.len())
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|buf| buf.len()).sum();
        if self.cut() {
            return Poll::Ready(Ok(len));
        }
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.account(result, len)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.cut() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.cut() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_an_http_url_apart() {
        let target = Target::parse("http://127.0.0.1:8080/webhooks/printone?x=1").unwrap();
        assert_eq!(target.host, "127.0.0.1");
        assert_eq!(target.port, 8080);
        assert_eq!(target.authority, "127.0.0.1:8080");
        assert_eq!(target.path, "/webhooks/printone?x=1");
        let bare = Target::parse("http://localhost").unwrap();
        assert_eq!((bare.port, bare.path.to_string()), (80, "/".to_owned()));
    }

    #[test]
    fn refuses_https_and_non_urls_as_usage_errors() {
        for url in ["https://example.com/", "example.com/hook", "not a url"] {
            assert_eq!(Target::parse(url).err().map(|f| f.code), Some(2), "{url}");
        }
    }
}
