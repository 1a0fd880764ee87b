//! The statuses of orders and batches: [`OrderStatus`] and [`BatchStatus`].
//!
//! Each is an enum of the statuses this crate names, with an `Unknown` variant that keeps any
//! other string exactly as sent: Print.one can add a status at any time, and a delivery carrying
//! one must still parse.

use std::{convert::Infallible, fmt, str::FromStr};

use serde::{Deserialize, Deserializer};

/// Declares a status enum over Print.one's status strings, with an `Unknown(String)` fallback,
/// and its conversions: `as_str`, `Display`, `From<&str>`, `From<String>`, `FromStr`,
/// `Deserialize` from the string, and comparisons with `str`.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[non_exhaustive]
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                $variant,
            )+
            /// A status this crate does not name (yet), exactly as sent. Parsing never puts a
            /// status named by another variant here.
            Unknown(String),
        }

        impl $name {
            /// The status exactly as Print.one sends it, e.g. for logs or a database column.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(sent) => sent,
                }
            }

            /// Whether this is a status the crate does not name.
            #[must_use]
            pub const fn is_unknown(&self) -> bool {
                matches!(self, Self::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(sent: &str) -> Self {
                match sent {
                    $($text => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(sent: String) -> Self {
                match sent.as_str() {
                    $($text => Self::$variant,)+
                    _ => Self::Unknown(sent),
                }
            }
        }

        impl FromStr for $name {
            type Err = Infallible;

            /// Never fails: a status the crate does not name becomes `Unknown`.
            fn from_str(sent: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(sent))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Reads the status string; any string is accepted, anything else is an error.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

status_enum! {
    /// The `status` of an [`Order`](super::Order), e.g. `order_pdf_delivered`.
    ///
    /// Statuses the crate does not name arrive as [`OrderStatus::Unknown`] with the string as
    /// sent; [`as_str`](Self::as_str) and `Display` give back exactly the string Print.one sent.
    /// Match with a wildcard arm: new variants may be added.
    ///
    /// ```
    /// use printone_webhooks::event::OrderStatus;
    ///
    /// let status: OrderStatus = serde_json::from_str(r#""order_cancelled""#)?;
    /// assert_eq!(status, OrderStatus::Cancelled);
    /// assert_eq!(status.to_string(), "order_cancelled");
    ///
    /// let new: OrderStatus = serde_json::from_str(r#""order_teleported""#)?;
    /// assert_eq!(new, OrderStatus::Unknown("order_teleported".to_owned()));
    /// assert_eq!(new.as_str(), "order_teleported");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub enum OrderStatus {
        /// `order_created`: the order was created.
        Created = "order_created",
        /// `order_processed`: the order was processed.
        Processed = "order_processed",
        /// `order_pdf_delivered`: the order's PDF was delivered.
        PdfDelivered = "order_pdf_delivered",
        /// `order_cancelled`: the order was cancelled.
        Cancelled = "order_cancelled",
        /// `order_failed`: the order failed; its `errors` say why.
        Failed = "order_failed",
    }
}

status_enum! {
    /// The `status` of a [`Batch`](super::Batch), e.g. `batch_scheduled`.
    ///
    /// Statuses the crate does not name arrive as [`BatchStatus::Unknown`] with the string as
    /// sent; [`as_str`](Self::as_str) and `Display` give back exactly the string Print.one sent.
    /// Match with a wildcard arm: new variants may be added.
    ///
    /// ```
    /// use printone_webhooks::event::BatchStatus;
    ///
    /// let status: BatchStatus = "batch_scheduled".parse().unwrap();
    /// assert_eq!(status, BatchStatus::Scheduled);
    /// assert_eq!(BatchStatus::from("batch_paused").as_str(), "batch_paused");
    /// ```
    pub enum BatchStatus {
        /// `batch_created`: the batch was created.
        Created = "batch_created",
        /// `batch_scheduled`: the batch is scheduled to be sent.
        Scheduled = "batch_scheduled",
        /// `batch_sent`: the batch was sent.
        Sent = "batch_sent",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const ORDER_STATUSES: [(&str, OrderStatus); 5] = [
        ("order_created", OrderStatus::Created),
        ("order_processed", OrderStatus::Processed),
        ("order_pdf_delivered", OrderStatus::PdfDelivered),
        ("order_cancelled", OrderStatus::Cancelled),
        ("order_failed", OrderStatus::Failed),
    ];

    const BATCH_STATUSES: [(&str, BatchStatus); 3] = [
        ("batch_created", BatchStatus::Created),
        ("batch_scheduled", BatchStatus::Scheduled),
        ("batch_sent", BatchStatus::Sent),
    ];

    #[test]
    fn known_order_statuses_round_trip_to_the_same_string() {
        for (sent, status) in ORDER_STATUSES {
            let parsed: OrderStatus =
                serde_json::from_value(serde_json::json!(sent)).expect("a status");
            assert_eq!(parsed, status, "{sent}");
            assert!(!parsed.is_unknown());
            assert_eq!(parsed.as_str(), sent);
            assert_eq!(parsed.to_string(), sent);
            assert_eq!(OrderStatus::from(sent.to_owned()), status);
            assert_eq!(sent.parse::<OrderStatus>(), Ok(status));
        }
    }

    #[test]
    fn known_batch_statuses_round_trip_to_the_same_string() {
        for (sent, status) in BATCH_STATUSES {
            let parsed: BatchStatus =
                serde_json::from_value(serde_json::json!(sent)).expect("a status");
            assert_eq!(parsed, status, "{sent}");
            assert_eq!(parsed.as_str(), sent);
            assert_eq!(parsed.to_string(), sent);
            assert_eq!(BatchStatus::from(sent.to_owned()), status);
        }
    }

    #[test]
    fn unknown_statuses_are_kept_exactly_as_sent() {
        // Near misses of known statuses are other statuses, not the known ones.
        for sent in [
            "order_printed",
            "ORDER_CREATED",
            "order_created ",
            "",
            "bestelling_verzonden ✉",
        ] {
            let parsed: OrderStatus =
                serde_json::from_value(serde_json::json!(sent)).expect("any string parses");
            assert_eq!(parsed, OrderStatus::Unknown(sent.to_owned()));
            assert!(parsed.is_unknown());
            assert_eq!(parsed.as_str(), sent);
            assert_eq!(parsed.to_string(), sent);
        }
        let batch: BatchStatus =
            serde_json::from_value(serde_json::json!("batch_paused")).expect("any string parses");
        assert_eq!(batch, BatchStatus::Unknown("batch_paused".to_owned()));
        assert_eq!(batch, "batch_paused");
    }

    #[test]
    fn a_status_that_is_not_a_string_is_an_error() {
        for value in [
            serde_json::json!(3),
            serde_json::json!({ "code": "order_created" }),
        ] {
            assert!(serde_json::from_value::<OrderStatus>(value.clone()).is_err());
            assert!(serde_json::from_value::<BatchStatus>(value).is_err());
        }
    }

    #[test]
    fn statuses_compare_with_strings_and_hash_by_variant() {
        assert_eq!(OrderStatus::PdfDelivered, "order_pdf_delivered");
        assert!(OrderStatus::Failed != *"order_cancelled");
        let seen: HashSet<OrderStatus> = ORDER_STATUSES.into_iter().map(|(_, s)| s).collect();
        assert_eq!(seen.len(), ORDER_STATUSES.len());
        assert!(seen.contains(&OrderStatus::from("order_failed")));
    }
}
