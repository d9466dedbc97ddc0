//! The built-in demo legacy backend: a small "team workspace" service with its own,
//! deliberately un-SCIM-like JSON API (integer ids, snake_case fields, a `status` enum,
//! `page`/`per_page` paging), stored in SQLite and served by pingora.
//!
//! Used by `scimgate demo` and the end-to-end tests as the backend scimgate sits in front of.
//!
//! Routes (JSON in and out; errors are `{"error": code, "message": text}`):
//! - `POST /api/login` `{"email","password"}` → `{"session": token}`
//! - `GET /api/me` → the caller's member record
//! - `GET|POST /api/teams/{team}/members` (team admin): `?email=&page=&per_page=` listing, create
//! - `GET|PUT|DELETE /api/teams/{team}/members/{id}` (team admin; GET also the member itself)
//! - `GET /api/teams/{team}/members/{id}/projects` (team admin or the member itself)
//! - `GET|POST /api/teams/{team}/projects` (team admin): `?name=&page=&per_page=` listing, create
//! - `GET|PUT|DELETE /api/teams/{team}/projects/{id}` (team admin)
//! - `GET /api/teams/{team}/projects/{id}/members` (team admin): `?page=&per_page=`
//! - `PUT|DELETE /api/teams/{team}/projects/{id}/members/{member_id}` (team admin; idempotent)
//! - self-service: `PUT /api/me/password`, `PUT /api/me/email`, `PATCH /api/users/{id}`,
//!   `DELETE /api/teams/{team}/members/me`, `DELETE /api/projects/{id}/members/me`
//!
//! Callers authenticate with `Authorization: Bearer <token>`: a login session, or the service
//! token given to [`LegacyBackend::open`], which acts as admin of every team.

mod api;
mod crypto;
mod error;
mod http;
mod input;
mod model;
mod project;
mod project_api;
mod project_store;
mod query;
mod route;
mod schema;
mod store;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use pingora::apps::http_app::HttpServer;
use pingora::services::listening::Service;

use self::api::Api;
pub use self::error::DemoError;
pub use self::http::LegacyHttpApp;
use self::store::Store;

/// The pingora listening service returned by [`legacy_service`].
pub type LegacyService = Service<HttpServer<LegacyHttpApp>>;

/// The demo backend's state (database and service token); cheap to clone.
#[derive(Clone)]
pub struct LegacyBackend {
    api: Arc<Api>,
}

impl LegacyBackend {
    /// Opens the SQLite file at `db_path` (WAL mode), creating it and seeding team `acme`
    /// (`admin@acme.test` as admin, `bob@acme.test`, `carol@acme.test`, all with
    /// `seed_password`, and project `Launch` with the admin and bob) on first open; a file of
    /// an older schema is upgraded. `service_token` authenticates as admin of every team.
    pub fn open(
        db_path: &Path,
        service_token: &str,
        seed_password: &str,
    ) -> Result<Self, DemoError> {
        if service_token.is_empty() {
            return Err(DemoError::msg("the demo service token must not be empty"));
        }
        if seed_password.is_empty() {
            return Err(DemoError::msg("the demo seed password must not be empty"));
        }
        let store = Store::open(db_path, seed_password)?;
        Ok(LegacyBackend {
            api: Arc::new(Api::new(store, service_token.to_owned())),
        })
    }
}

impl std::fmt::Debug for LegacyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyBackend").finish_non_exhaustive()
    }
}

/// A pingora service answering the legacy API over plain HTTP on `addr` (`"127.0.0.1:8081"`).
///
/// pingora binds when the server runs and a failed bind only panics the service's thread:
/// callers should check that `addr` is free beforehand.
pub fn legacy_service(backend: LegacyBackend, addr: &str) -> LegacyService {
    let app = HttpServer::new_app(LegacyHttpApp::new(backend.api));
    let mut service = Service::new("demo legacy backend".to_owned(), app);
    service.add_tcp(addr);
    service
}
