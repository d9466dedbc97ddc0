//! The SCIM 2.0 server (RFC 7643/7644): protocol types and pure logic (schemas, filters, PATCH,
//! projection, rendering, discovery) and the request router that drives the backend directory.

pub mod cursor;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod fold;
pub mod group;
pub mod json;
pub mod message;
pub mod normalize;
pub mod patch;
pub mod projection;
pub mod resource;
pub mod schema;
