//! The legacy API itself: authentication, permissions and one handler per route.
//! Free of pingora types; [`Api::handle`] maps a parsed request to a JSON reply.

use std::sync::{Mutex, MutexGuard, PoisonError};

use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::crypto::{ct_eq, hash_password, new_session_token, token_digest, verify_password};
use super::error::ApiError;
use super::input::{
    self, parse_changes, parse_object, required_email, required_string, Object, ADMIN_FIELDS,
    PROFILE_FIELDS,
};
use super::model::{Member, MemberChanges, NewMember, Status};
use super::route::Route;
use super::store::Store;

/// Default page size of member listings.
const DEFAULT_PER_PAGE: u64 = 50;
/// Largest page size; larger requests are clamped.
const MAX_PER_PAGE: u64 = 200;

/// A request as the API sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiRequest<'a> {
    pub method: &'a Method,
    /// Path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The raw `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

/// A reply: status, optional JSON body and, for 405, the `Allow` header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiReply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub allow: Option<String>,
}

impl ApiReply {
    fn json(status: StatusCode, body: Value) -> Self {
        ApiReply {
            status,
            body: Some(body),
            allow: None,
        }
    }

    fn no_content() -> Self {
        ApiReply {
            status: StatusCode::NO_CONTENT,
            body: None,
            allow: None,
        }
    }

    fn member(status: StatusCode, member: &Member) -> Result<Self, ApiError> {
        let body = serde_json::to_value(member).map_err(|e| {
            tracing::error!(error = %e, "cannot serialise member");
            ApiError::internal()
        })?;
        Ok(Self::json(status, body))
    }

    /// The reply for an error.
    pub fn error(e: &ApiError) -> Self {
        Self::json(e.status, e.body())
    }

    fn method_not_allowed(route: &Route) -> Self {
        ApiReply {
            allow: Some(route.allow_header()),
            ..Self::error(&ApiError::method_not_allowed())
        }
    }
}

/// Who is calling.
#[derive(Debug)]
enum Caller {
    /// The service token: admin of every team, no member record.
    Service,
    /// A logged-in, active member.
    Member(Box<Member>),
}

impl Caller {
    fn may_admin(&self, team: &str) -> bool {
        match self {
            Caller::Service => true,
            Caller::Member(m) => m.is_admin_of(team),
        }
    }

    fn is_member(&self, id: i64) -> bool {
        matches!(self, Caller::Member(m) if m.id == id)
    }

    fn require_admin(&self, team: &str) -> Result<(), ApiError> {
        match self {
            _ if self.may_admin(team) => Ok(()),
            Caller::Member(m) if m.team == team => Err(ApiError::forbidden(format!(
                "only admins of team {team} may do this"
            ))),
            _ => Err(ApiError::forbidden(format!(
                "you are not a member of team {team}"
            ))),
        }
    }

    fn require_member(&self) -> Result<&Member, ApiError> {
        match self {
            Caller::Member(m) => Ok(m),
            Caller::Service => Err(ApiError::forbidden(
                "the service token has no member record",
            )),
        }
    }
}

/// Shared state of the legacy API: the database and the service token.
pub(crate) struct Api {
    store: Mutex<Store>,
    service_token: String,
}

impl Api {
    /// An API over `store` accepting `service_token` as admin of every team.
    pub fn new(store: Store, service_token: String) -> Self {
        Api {
            store: Mutex::new(store),
            service_token,
        }
    }

    /// Answers one request.
    pub fn handle(&self, req: &ApiRequest<'_>) -> ApiReply {
        self.dispatch(req).unwrap_or_else(|e| ApiReply::error(&e))
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic elsewhere cannot leave the connection half-written: SQLite statements are atomic.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn dispatch(&self, req: &ApiRequest<'_>) -> Result<ApiReply, ApiError> {
        let route = Route::parse(req.path).ok_or_else(|| ApiError::not_found("no such route"))?;
        if !route.methods().contains(req.method) {
            return Ok(ApiReply::method_not_allowed(&route));
        }
        let store = self.store();
        if route == Route::Login {
            return login(&store, req.body);
        }
        let caller = self.authenticate(&store, req.authorization)?;
        let ctx = Ctx {
            store: &store,
            caller: &caller,
            body: req.body,
        };
        ctx.route(route, req.method, req.query)
    }

    fn authenticate(&self, store: &Store, header: Option<&str>) -> Result<Caller, ApiError> {
        let token = header
            .and_then(bearer_token)
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        if ct_eq(token.as_bytes(), self.service_token.as_bytes()) {
            return Ok(Caller::Service);
        }
        store
            .session_member(&token_digest(token))?
            .map(|m| Caller::Member(Box::new(m)))
            .ok_or_else(|| ApiError::unauthorized("unknown or expired session"))
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `POST /api/login`.
fn login(store: &Store, body: &[u8]) -> Result<ApiReply, ApiError> {
    let obj = parse_object(body)?;
    let failed = || ApiError::unauthorized("wrong email or password");
    let email = input::optional_string(&obj, "email").map_err(|_| failed())?;
    let password = input::optional_string(&obj, "password").map_err(|_| failed())?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(failed());
    };
    let (member, hash) = store.member_by_email(&email)?.ok_or_else(failed)?;
    let password_ok = hash.is_some_and(|h| verify_password(&h, &password));
    if !password_ok || member.status != Status::Active {
        return Err(failed());
    }
    let token = new_session_token();
    store.add_session(member.id, &token_digest(&token))?;
    Ok(ApiReply::json(StatusCode::OK, json!({ "session": token })))
}

/// An authenticated request being handled.
struct Ctx<'a> {
    store: &'a Store,
    caller: &'a Caller,
    body: &'a [u8],
}

impl Ctx<'_> {
    fn route(
        &self,
        route: Route,
        method: &Method,
        query: Option<&str>,
    ) -> Result<ApiReply, ApiError> {
        match (route, method.as_str()) {
            (Route::Me, _) => ApiReply::member(StatusCode::OK, self.caller.require_member()?),
            (Route::MyPassword, _) => self.change_password(),
            (Route::MyEmail, _) => self.change_email(),
            (Route::User(id), _) => self.patch_user(id),
            (Route::LeaveTeam(team), _) => self.leave_team(&team),
            (Route::Members(team), "GET") => self.list_members(&team, query),
            (Route::Members(team), _) => self.create_member(&team),
            (Route::Member(team, id), "GET") => self.get_member(&team, id),
            (Route::Member(team, id), "PUT") => self.put_member(&team, id),
            (Route::Member(team, id), _) => self.delete_member(&team, id),
            (Route::Login, _) => Err(ApiError::method_not_allowed()),
        }
    }

    fn object(&self) -> Result<Object, ApiError> {
        parse_object(self.body)
    }

    /// The member `id` if it belongs to `team`.
    fn member_in_team(&self, team: &str, id: i64) -> Result<Member, ApiError> {
        self.store
            .member(id)?
            .filter(|m| m.team == team)
            .ok_or_else(|| ApiError::not_found(format!("no member {id} in team {team}")))
    }

    fn save(&self, mut member: Member, changes: &MemberChanges) -> Result<ApiReply, ApiError> {
        changes.apply_to(&mut member);
        let saved = self.store.save(&member)?;
        ApiReply::member(StatusCode::OK, &saved)
    }

    /// `GET /api/teams/{team}/members`.
    fn list_members(&self, team: &str, query: Option<&str>) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let q = ListQuery::parse(query.unwrap_or(""))?;
        let offset = (q.page - 1).saturating_mul(q.per_page);
        let limit = u32::try_from(q.per_page).unwrap_or(u32::MAX);
        let page = self.store.list(team, q.email.as_deref(), limit, offset)?;
        let members = serde_json::to_value(&page.members).map_err(|e| {
            tracing::error!(error = %e, "cannot serialise members");
            ApiError::internal()
        })?;
        Ok(ApiReply::json(
            StatusCode::OK,
            json!({ "members": members, "total": page.total, "page": q.page, "per_page": q.per_page }),
        ))
    }

    /// `POST /api/teams/{team}/members`.
    fn create_member(&self, team: &str) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let obj = self.object()?;
        let email = required_email(&obj)?;
        let changes = parse_changes(&obj, ADMIN_FIELDS)?;
        let password_hash = initial_password(&obj)?.map(|p| hash_password(&p));
        let new = NewMember::from_changes(team, email, changes, password_hash);
        let member = self.store.insert(&new)?;
        ApiReply::member(StatusCode::CREATED, &member)
    }

    /// `GET /api/teams/{team}/members/{id}`.
    fn get_member(&self, team: &str, id: i64) -> Result<ApiReply, ApiError> {
        let is_self = matches!(self.caller, Caller::Member(m) if m.id == id && m.team == team);
        if !is_self {
            self.caller.require_admin(team)?;
        }
        ApiReply::member(StatusCode::OK, &self.member_in_team(team, id)?)
    }

    /// `PUT /api/teams/{team}/members/{id}`.
    fn put_member(&self, team: &str, id: i64) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let member = self.member_in_team(team, id)?;
        let changes = parse_changes(&self.object()?, ADMIN_FIELDS)?;
        self.save(member, &changes)
    }

    /// `DELETE /api/teams/{team}/members/{id}`.
    fn delete_member(&self, team: &str, id: i64) -> Result<ApiReply, ApiError> {
        self.caller.require_admin(team)?;
        let member = self.member_in_team(team, id)?;
        self.store.delete(member.id)?;
        Ok(ApiReply::no_content())
    }

    /// `PUT /api/me/password`.
    fn change_password(&self) -> Result<ApiReply, ApiError> {
        let me = self.caller.require_member()?;
        let obj = self.object()?;
        let current = required_string(&obj, "current_password")?;
        let new = required_string(&obj, "new_password")?;
        if new.is_empty() {
            return Err(ApiError::invalid("new_password must not be empty"));
        }
        let stored = self.store.password_hash(me.id)?;
        if !stored.is_some_and(|h| verify_password(&h, &current)) {
            return Err(ApiError::wrong_password());
        }
        self.store.set_password(me.id, &hash_password(&new))?;
        Ok(ApiReply::no_content())
    }

    /// `PUT /api/me/email`.
    fn change_email(&self) -> Result<ApiReply, ApiError> {
        let me = self.caller.require_member()?;
        let changes = MemberChanges {
            email: Some(required_email(&self.object()?)?),
            ..MemberChanges::default()
        };
        self.save(me.clone(), &changes)
    }

    /// `PATCH /api/users/{id}`: profile update by the member or an admin of their team.
    fn patch_user(&self, id: i64) -> Result<ApiReply, ApiError> {
        let target = self
            .store
            .member(id)?
            .ok_or_else(|| ApiError::not_found(format!("no user {id}")))?;
        if !self.caller.is_member(id) && !self.caller.may_admin(&target.team) {
            return Err(ApiError::forbidden("you may only edit your own profile"));
        }
        let changes = parse_changes(&self.object()?, PROFILE_FIELDS)?;
        self.save(target, &changes)
    }

    /// `DELETE /api/teams/{team}/members/me`: the caller leaves the team.
    fn leave_team(&self, team: &str) -> Result<ApiReply, ApiError> {
        let me = self.caller.require_member()?;
        if me.team != team {
            return Err(ApiError::forbidden(format!(
                "you are not a member of team {team}"
            )));
        }
        self.store.delete(me.id)?;
        Ok(ApiReply::no_content())
    }
}

/// The optional `password` of a new member; JSON null means none.
fn initial_password(obj: &Object) -> Result<Option<String>, ApiError> {
    match obj.get("password") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(p)) if !p.is_empty() => Ok(Some(p.clone())),
        Some(_) => Err(ApiError::invalid("password must be a non-empty string")),
    }
}

/// Query parameters of a member listing.
#[derive(Debug, PartialEq, Eq)]
struct ListQuery {
    email: Option<String>,
    /// 1-based.
    page: u64,
    /// Clamped to [`MAX_PER_PAGE`].
    per_page: u64,
}

impl ListQuery {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let mut q = ListQuery {
            email: None,
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            match key.as_ref() {
                "email" => q.email = Some(value.into_owned()),
                "page" => q.page = positive(&key, &value)?,
                "per_page" => q.per_page = positive(&key, &value)?.min(MAX_PER_PAGE),
                _ => {}
            }
        }
        Ok(q)
    }
}

fn positive(key: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::invalid(format!("{key} must be a positive integer")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::store::Store;

    fn api(name: &str) -> Api {
        let dir = std::env::temp_dir().join(format!(
            "scimgate-demo-api-{name}-{}-{}",
            std::process::id(),
            new_session_token()
        ));
        let _ = std::fs::create_dir_all(&dir);
        match Store::open(&dir.join("db.sqlite"), "pw") {
            Ok(store) => Api::new(store, "svc".into()),
            Err(e) => panic!("open: {e}"),
        }
    }

    fn call(api: &Api, method: Method, path: &str, token: Option<&str>, body: Value) -> ApiReply {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let auth = token.map(|t| format!("Bearer {t}"));
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        api.handle(&ApiRequest {
            method: &method,
            path,
            query,
            authorization: auth.as_deref(),
            body: &body,
        })
    }

    fn login(api: &Api, email: &str) -> String {
        let r = call(
            api,
            Method::POST,
            "/api/login",
            None,
            json!({"email": email, "password": "pw"}),
        );
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        r.body
            .and_then(|b| b["session"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn code(r: &ApiReply) -> String {
        r.body
            .as_ref()
            .and_then(|b| b["error"].as_str())
            .unwrap_or("")
            .to_owned()
    }

    #[test]
    fn list_query_parsing() {
        let q = ListQuery::parse("page=2&per_page=500&email=a%40b&x=1");
        assert_eq!(
            q.map_err(|e| e.message),
            Ok(ListQuery {
                email: Some("a@b".into()),
                page: 2,
                per_page: 200
            })
        );
        assert!(ListQuery::parse("page=0").is_err());
        assert!(ListQuery::parse("per_page=abc").is_err());
        assert_eq!(ListQuery::parse("page=").map(|q| q.page).ok(), Some(1));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn auth_and_routing_errors() {
        let api = api("errors");
        let r = call(&api, Method::GET, "/api/me", None, Value::Null);
        assert_eq!(
            (r.status, code(&r).as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        let r = call(&api, Method::GET, "/api/me", Some("nope"), Value::Null);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = call(&api, Method::GET, "/nowhere", Some("svc"), Value::Null);
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = call(&api, Method::POST, "/api/me", Some("svc"), Value::Null);
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.allow.as_deref(), Some("GET"));
        let r = call(&api, Method::GET, "/api/me", Some("svc"), Value::Null);
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = api.handle(&ApiRequest {
            method: &Method::POST,
            path: "/api/teams/acme/members",
            query: None,
            authorization: Some("Bearer svc"),
            body: b"{nope",
        });
        assert_eq!(
            (r.status, code(&r).as_str()),
            (StatusCode::BAD_REQUEST, "bad_json")
        );
    }

    #[test]
    fn login_failures() {
        let api = api("login");
        for body in [
            json!({"email": "admin@acme.test", "password": "bad"}),
            json!({"email": "nobody@acme.test", "password": "pw"}),
            json!({"email": "admin@acme.test"}),
            json!({"email": 1, "password": "pw"}),
        ] {
            let r = call(&api, Method::POST, "/api/login", None, body);
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        assert!(!login(&api, "ADMIN@ACME.TEST").is_empty());
    }

    #[test]
    fn member_permissions() {
        let api = api("perms");
        let bob = login(&api, "bob@acme.test");
        let admin = login(&api, "admin@acme.test");
        let r = call(
            &api,
            Method::GET,
            "/api/teams/acme/members",
            Some(&bob),
            Value::Null,
        );
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = call(
            &api,
            Method::GET,
            "/api/teams/other/members",
            Some(&admin),
            Value::Null,
        );
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = call(
            &api,
            Method::GET,
            "/api/teams/acme/members/2",
            Some(&bob),
            Value::Null,
        );
        assert_eq!(r.status, StatusCode::OK, "bob reads himself");
        let r = call(
            &api,
            Method::GET,
            "/api/teams/acme/members/3",
            Some(&bob),
            Value::Null,
        );
        assert_eq!(r.status, StatusCode::FORBIDDEN, "bob cannot read carol");
        let r = call(
            &api,
            Method::PATCH,
            "/api/users/3",
            Some(&bob),
            json!({"first_name": "X"}),
        );
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = call(
            &api,
            Method::PATCH,
            "/api/users/2",
            Some(&bob),
            json!({"role": "admin", "title": "Chief"}),
        );
        assert_eq!(r.status, StatusCode::OK);
        let body = r.body.unwrap_or_default();
        assert_eq!(
            (body["role"].as_str(), body["title"].as_str()),
            (Some("member"), Some("Chief"))
        );
        let r = call(
            &api,
            Method::PATCH,
            "/api/users/3",
            Some(&admin),
            json!({"title": "Clerk"}),
        );
        assert_eq!(r.status, StatusCode::OK);
        let r = call(
            &api,
            Method::PATCH,
            "/api/users/999",
            Some(&admin),
            json!({}),
        );
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = call(
            &api,
            Method::DELETE,
            "/api/teams/other/members/me",
            Some(&bob),
            Value::Null,
        );
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn suspension_revokes_sessions_and_login() {
        let api = api("suspend");
        let bob = login(&api, "bob@acme.test");
        let r = call(
            &api,
            Method::PUT,
            "/api/teams/acme/members/2",
            Some("svc"),
            json!({"status": "suspended"}),
        );
        assert_eq!(r.status, StatusCode::OK);
        let r = call(&api, Method::GET, "/api/me", Some(&bob), Value::Null);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = call(
            &api,
            Method::POST,
            "/api/login",
            None,
            json!({"email": "bob@acme.test", "password": "pw"}),
        );
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = call(
            &api,
            Method::PUT,
            "/api/teams/acme/members/2",
            Some("svc"),
            json!({"status": "gone"}),
        );
        assert_eq!(
            (r.status, code(&r).as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
        );
    }

    #[test]
    fn create_validation() {
        let api = api("create");
        let path = "/api/teams/acme/members";
        let r = call(
            &api,
            Method::POST,
            path,
            Some("svc"),
            json!({"first_name": "X"}),
        );
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = call(
            &api,
            Method::POST,
            path,
            Some("svc"),
            json!({"email": "x@y", "password": 3}),
        );
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = call(
            &api,
            Method::POST,
            path,
            Some("svc"),
            json!({"email": "x@y", "unknown": true}),
        );
        assert_eq!(r.status, StatusCode::CREATED);
        let r = call(
            &api,
            Method::POST,
            path,
            Some("svc"),
            json!({"email": "X@Y"}),
        );
        assert_eq!(
            (r.status, code(&r).as_str()),
            (StatusCode::CONFLICT, "email_taken")
        );
        let r = call(
            &api,
            Method::POST,
            "/api/teams/beta/members",
            Some("svc"),
            json!({"email": "z@beta.test", "role": "admin", "password": "pw"}),
        );
        assert_eq!(r.status, StatusCode::CREATED);
        let beta_admin = login(&api, "z@beta.test");
        let r = call(
            &api,
            Method::GET,
            "/api/teams/acme/members/2",
            Some(&beta_admin),
            Value::Null,
        );
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = call(
            &api,
            Method::PUT,
            "/api/teams/beta/members/2",
            Some(&beta_admin),
            json!({}),
        );
        assert_eq!(r.status, StatusCode::NOT_FOUND, "bob is not in beta");
    }
}
