//! The self-service guard: blocks leave-team, email change and password change for accounts the
//! identity provider manages. Pure parts: request-target canonicalisation ([`canon`]), route
//! templates ([`route`]), strict body scanning ([`body`]), header ambiguity checks ([`request`]),
//! identity channels ([`channels`]), caller ids ([`caller_id`]), JWT verification ([`jwt`]), settings ([`rules`]), the decision
//! ([`decision`]) and the refusals it answers with ([`refusal`]).

pub mod body;
pub mod caller_id;
pub mod canon;
pub mod channels;
pub mod decision;
pub mod gate;
pub mod identity;
pub mod jwt;
pub mod refusal;
pub mod request;
pub mod route;
pub mod rules;
