//! The legacy API itself: authentication, permissions, routing and the member handlers (the
//! project handlers are in `project_api`). Free of pingora types; [`Api::handle`] maps a parsed
//! request to a JSON reply.

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
use super::query::ListQuery;
use super::route::Route;
use super::store::Store;

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
    pub(super) fn json(status: StatusCode, body: Value) -> Self {
        ApiReply {
            status,
            body: Some(body),
            allow: None,
        }
    }

    pub(super) fn no_content() -> Self {
        ApiReply {
            status: StatusCode::NO_CONTENT,
            body: None,
            allow: None,
        }
    }

    fn member(status: StatusCode, member: &Member) -> Result<Self, ApiError> {
        Ok(Self::json(status, to_json(member)?))
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

/// `value` as JSON.
pub(super) fn to_json(value: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "cannot serialise a reply");
        ApiError::internal()
    })
}

/// Who is calling.
#[derive(Debug)]
pub(super) enum Caller {
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

    pub(super) fn require_admin(&self, team: &str) -> Result<(), ApiError> {
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

    pub(super) fn require_member(&self) -> Result<&Member, ApiError> {
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
pub(super) struct Ctx<'a> {
    pub(super) store: &'a Store,
    pub(super) caller: &'a Caller,
    pub(super) body: &'a [u8],
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
            (Route::MemberProjects(team, id), _) => self.member_projects(&team, id),
            (Route::Projects(team), "GET") => self.list_projects(&team, query),
            (Route::Projects(team), _) => self.create_project(&team),
            (Route::Project(team, id), "GET") => self.get_project(&team, id),
            (Route::Project(team, id), "PUT") => self.put_project(&team, id),
            (Route::Project(team, id), _) => self.delete_project(&team, id),
            (Route::ProjectMembers(team, id), _) => self.list_project_members(&team, id, query),
            (Route::ProjectMember(team, id, member), "PUT") => {
                self.add_project_member(&team, id, member)
            }
            (Route::ProjectMember(team, id, member), _) => {
                self.remove_project_member(&team, id, member)
            }
            (Route::LeaveProject(id), _) => self.leave_project(id),
            (Route::Login, _) => Err(ApiError::method_not_allowed()),
        }
    }

    pub(super) fn object(&self) -> Result<Object, ApiError> {
        parse_object(self.body)
    }

    /// The member `id` if it belongs to `team`.
    pub(super) fn member_in_team(&self, team: &str, id: i64) -> Result<Member, ApiError> {
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
        let q = ListQuery::parse(query.unwrap_or(""), Some("email"))?;
        let page = self
            .store
            .list(team, q.filter.as_deref(), q.limit(), q.offset())?;
        Ok(ApiReply::json(
            StatusCode::OK,
            json!({ "members": to_json(&page.members)?, "total": page.total, "page": q.page, "per_page": q.per_page }),
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
        self.require_self_or_admin(team, id)?;
        ApiReply::member(StatusCode::OK, &self.member_in_team(team, id)?)
    }

    /// Passes the member `id` of `team` themselves and the team's admins.
    pub(super) fn require_self_or_admin(&self, team: &str, id: i64) -> Result<(), ApiError> {
        let is_self = matches!(self.caller, Caller::Member(m) if m.id == id && m.team == team);
        if is_self {
            return Ok(());
        }
        self.caller.require_admin(team)
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
