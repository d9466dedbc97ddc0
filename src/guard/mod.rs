//! The self-service guard: blocks leave-team, email change and password change for accounts the
//! identity provider manages. Pure parts: request-target canonicalisation ([`canon`]), route
//! templates ([`route`]), strict body scanning ([`body`]), header ambiguity checks ([`request`]),
//! settings ([`rules`]) and the decision ([`decision`]).

pub mod body;
pub mod canon;
pub mod decision;
pub mod gate;
pub mod identity;
pub mod request;
pub mod route;
pub mod rules;
