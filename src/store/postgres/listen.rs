//! The listening connection: one per store, `LISTEN`ing on the store's channel, so that a
//! delivery stored, released or replayed by any replica wakes this store's idle workers.
//!
//! It is a connection of its own (a pooled one hands its notifications to nobody), polled for
//! [`AsyncMessage::Notification`]s. When it drops it is made again with a backoff; meanwhile
//! the workers still poll, so a missed wake-up only delays.

use std::{
    future::poll_fn,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{watch, Notify},
    time::{sleep, timeout, Instant},
};
use tokio_postgres::{
    tls::{MakeTlsConnect, TlsConnect},
    AsyncMessage, Client, Config, Connection, Socket,
};

use crate::store::postgres::GRACE;

/// The first wait before connecting again; it doubles after each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before connecting again.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often the connection repeats its `LISTEN`, to find out that it broke.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// What the listening connection needs.
pub(crate) struct Listener {
    pub(crate) config: Config,
    /// `LISTEN "channel"`.
    pub(crate) listen: String,
    pub(crate) notify: Arc<Notify>,
    /// Whether the connection listens now.
    pub(crate) up: watch::Sender<bool>,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    pub(crate) described: String,
}

impl Listener {
    /// Listens until the store is dropped (which aborts this task), connecting again with a
    /// backoff whenever the connection fails.
    pub(crate) async fn run<T>(self, tls: T)
    where
        T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
        T::Stream: Sync + Send,
        T::TlsConnect: Sync + Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let began = Instant::now();
            let ended = self.session(tls.clone()).await;
            self.up.send_replace(false);
            if began.elapsed() > MAX_BACKOFF {
                backoff = FIRST_BACKOFF;
            }
            tracing::warn!(
                store = %self.described,
                error = %ended,
                retry_in_ms = backoff.as_millis(),
                "the PostgreSQL listening connection ended; idle workers poll until it is back"
            );
            sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection, listening until it fails: says why it ended.
    async fn session<T>(&self, tls: T) -> String
    where
        T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
        T::Stream: Sync + Send,
        T::TlsConnect: Sync + Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let (client, mut connection) =
            match timeout(self.connect_timeout, self.config.connect(tls)).await {
                Ok(Ok(connected)) => connected,
                Ok(Err(error)) => return error.to_string(),
                Err(_) => return format!("no connection within {:?}", self.connect_timeout),
            };
        let messages = poll_fn(|cx| self.pump(&mut connection, cx));
        tokio::select! {
            ended = messages => ended,
            ended = self.keep_listening(&client) => ended,
        }
    }

    /// Drives the connection, waking a worker at each notification, until it ends.
    fn pump<S, T>(&self, connection: &mut Connection<S, T>, cx: &mut Context<'_>) -> Poll<String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        T: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(AsyncMessage::Notification(_)))) => self.notify.notify_one(),
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(error))) => return Poll::Ready(error.to_string()),
                Poll::Ready(None) => return Poll::Ready("the connection closed".to_owned()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Listens, then repeats the `LISTEN` now and then, so that a connection that broke
    /// without a word is found out and made again.
    async fn keep_listening(&self, client: &Client) -> String {
        let limit = self.statement_timeout + GRACE;
        loop {
            match timeout(limit, client.batch_execute(&self.listen)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return error.to_string(),
                Err(_) => return format!("no answer within {limit:?}"),
            }
            if !*self.up.borrow() {
                self.up.send_replace(true);
                // Work may have arrived while nobody listened.
                self.notify.notify_one();
            }
            sleep(HEARTBEAT).await;
        }
    }
}
