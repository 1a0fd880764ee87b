//! How a PostgreSQL store reaches its server: the connection settings from a URL, a
//! description without the password, and the TLS connector the pool and the listening
//! connection use.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::{
    config::Host,
    tls::{MakeTlsConnect, TlsConnect},
    Config, Socket,
};

use crate::store::{error::StoreError, postgres::listen::Listener};

/// The `application_name` of the store's connections unless the URL names one.
const APPLICATION_NAME: &str = "printone-webhooks";

/// The connection settings of `url`, with the store's timeouts: the connect timeout, and the
/// statement timeout set on the server for every session (`options=-c statement_timeout=…`).
pub(crate) fn config(
    url: &str,
    connect_timeout: Duration,
    statement_timeout: Duration,
) -> Result<Config, StoreError> {
    let mut config: Config = url.parse().map_err(|error| {
        // The URL may hold a password: only the parser's reason is repeated.
        StoreError::InvalidUrl(format!("a PostgreSQL URL that cannot be read: {error}"))
    })?;
    config.connect_timeout(connect_timeout);
    let timeout = format!(
        "-c statement_timeout={}",
        statement_timeout.as_millis().max(1)
    );
    let options = match config.get_options() {
        Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {timeout}"),
        _ => timeout,
    };
    config.options(options);
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    Ok(config)
}

/// `postgres://host:port/database (schema …)`: where the store keeps its data, without the
/// user or password.
pub(crate) fn describe(config: &Config, schema: &str) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let port = ports
                .get(index)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    let database = config
        .get_dbname()
        .or_else(|| config.get_user())
        .unwrap_or("postgres");
    format!("postgres://{hosts}/{database} (schema {schema})")
}

/// The time limits of the pool a store builds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) size: usize,
    pub(crate) connect: Duration,
    pub(crate) statement: Duration,
}

/// Makes the store's connections with one TLS connector, whatever its type.
pub(crate) trait Connector: Send + Sync {
    /// A pool of connections made with `config`.
    fn pool(&self, config: Config, limits: Limits) -> Result<Pool, StoreError>;

    /// Starts `listener` on a connection of its own, made with this connector.
    fn listen(&self, listener: Listener) -> JoinHandle<()>;
}

/// A [`Connector`] of the TLS connector `T` (`NoTls` by default).
pub(crate) struct Tls<T>(pub(crate) T);

impl<T> Connector for Tls<T>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn pool(&self, config: Config, limits: Limits) -> Result<Pool, StoreError> {
        let manager = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = Manager::from_config(config, self.0.clone(), manager);
        Pool::builder(manager)
            .max_size(limits.size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(limits.connect))
            .create_timeout(Some(limits.connect))
            .recycle_timeout(Some(limits.statement))
            .build()
            .map_err(|error| StoreError::unavailable(format!("a connection pool: {error}")))
    }

    fn listen(&self, listener: Listener) -> JoinHandle<()> {
        tokio::spawn(listener.run(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_names_the_server_and_schema_but_no_password() {
        let url = "postgres://hooks:s3cret@db.internal:6432/deliveries";
        let config = config(url, Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let text = describe(&config, "printone_webhooks");
        assert_eq!(
            text,
            "postgres://db.internal:6432/deliveries (schema printone_webhooks)"
        );
        assert!(!text.contains("s3cret") && !text.contains("hooks@"));
    }

    #[test]
    fn the_statement_timeout_is_set_for_every_session_beside_the_urls_options() {
        let url = "postgresql://u@h/db?options=-c%20search_path%3Dx";
        let config = config(url, Duration::from_secs(1), Duration::from_millis(1500)).unwrap();
        assert_eq!(
            config.get_options(),
            Some("-c search_path=x -c statement_timeout=1500")
        );
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(1)));
        assert_eq!(config.get_application_name(), Some(APPLICATION_NAME));
    }

    #[test]
    fn an_unreadable_url_is_refused_without_repeating_it() {
        let error = config(
            "postgres://u:pw@h:notaport/db",
            Duration::ZERO,
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(matches!(error, StoreError::InvalidUrl(_)), "{error}");
        assert!(!error.to_string().contains("pw"), "{error}");
    }
}
