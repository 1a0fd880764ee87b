//! The shared known-answer vectors of `tests/vectors/printone.json`, as the tests read them.
//!
//! Compiled only for tests: by the unit tests here and, through `#[path]`, by the
//! integration tests in `tests/common`.
#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

/// One vector: secrets in rotation order, the exact body, the headers, the expected outcome.
#[derive(Debug, Deserialize)]
pub struct Vector {
    pub name: String,
    pub secrets: Vec<String>,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub expected: Expected,
}

/// `outcome` is `valid`, `missing`, `malformed`, `ambiguous`, `mismatch` or `empty_secret`.
#[derive(Debug, Deserialize)]
pub struct Expected {
    pub outcome: String,
    pub matched_secret: Option<usize>,
}

#[derive(Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

/// Every vector of the file.
pub fn all() -> Vec<Vector> {
    serde_json::from_str::<VectorFile>(include_str!("../tests/vectors/printone.json"))
        .expect("the vector file parses")
        .vectors
}

/// The vector named `name`.
pub fn named(name: &str) -> Vector {
    all()
        .into_iter()
        .find(|vector| vector.name == name)
        .unwrap_or_else(|| panic!("no vector named {name}"))
}

impl Vector {
    /// The vector's headers, repeats kept in order.
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
            map.append(
                name,
                HeaderValue::from_str(value).expect("a valid header value"),
            );
        }
        map
    }

    /// Whether the vector expects the delivery to be accepted.
    pub fn is_valid(&self) -> bool {
        self.expected.outcome == "valid"
    }
}
