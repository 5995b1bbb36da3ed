//! Domain and wire types of the Octogen Catalog API. Everything here is pure:
//! no I/O, no clocks except `Timestamp::now`, no global state.

pub mod api_key;
pub mod error;
pub mod facets;
pub mod product;
pub mod time;
pub mod url_alias;
pub mod url_norm;
pub mod wire;

pub use api_key::{ApiKey, KeyHash, KeyId, Pepper};
pub use error::{ErrorCode, LocPart, ValidationIssue};
pub use product::Product;
pub use time::Timestamp;
pub use wire::ProductRecord;
