//! The alt backend's teams: named groups of an organisation's accounts, in the accounts' style.
//!
//! - `GET /v1/orgs/{org}/teams?offset=&limit=&title=` → `{"data":[..],"meta":{"total","offset","limit"}}`
//!   (paged like accounts; `title` matches exactly, ignoring case; creation order)
//! - `POST /v1/orgs/{org}/teams` `{"team":{title,member_ids}}` → 201 `{"data":{..}}`
//! - `GET|PATCH|DELETE /v1/orgs/{org}/teams/{id}` → `{"data":{..}}` / `{"data":{..}}` / 204
//!
//! A team is `{"id":"team_<12 hex>","org","title","member_ids":["acc_.."],"created","modified"}`.
//! PATCH merges the keys it is given. A title another team of the organisation has (ignoring
//! case) is 409 `title_taken`; a missing or blank title 400 `validation`; a member id that is
//! not an account of the organisation 400 `unknown_member`. A refused write changes nothing.

use super::{
    error, id_list, missing, new_id, no_content, not_allowed, now, validation, ListQuery, Reply,
    State,
};
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// One team.
#[derive(Debug, Clone)]
pub(super) struct Team {
    pub(super) id: String,
    pub(super) org: String,
    title: String,
    /// Account ids of the same organisation, in the order they were given.
    member_ids: Vec<String>,
    created: String,
    modified: String,
}

impl Team {
    /// The team as the API shows it.
    pub(super) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "org": self.org,
            "title": self.title,
            "member_ids": self.member_ids,
            "created": self.created,
            "modified": self.modified,
        })
    }

    fn reply(&self, status: StatusCode) -> Reply {
        Reply::json(status, json!({ "data": self.to_json() }))
    }
}

/// Answers a request to `/v1/orgs/{org}/teams`.
pub(super) fn collection(
    state: &mut State,
    method: &Method,
    org: &str,
    query: Option<&str>,
    body: &[u8],
) -> Reply {
    if method == Method::GET {
        list(state, org, query)
    } else if method == Method::POST {
        create(state, org, body)
    } else {
        not_allowed("GET, POST")
    }
}

/// Answers a request to `/v1/orgs/{org}/teams/{id}`.
pub(super) fn item(state: &mut State, method: &Method, org: &str, id: &str, body: &[u8]) -> Reply {
    if ![Method::GET, Method::PATCH, Method::DELETE].contains(method) {
        return not_allowed("GET, PATCH, DELETE");
    }
    let Some(at) = find(state, org, id) else {
        return missing(StatusCode::NOT_FOUND, "not_found");
    };
    if method == Method::GET {
        state.teams[at].reply(StatusCode::OK)
    } else if method == Method::PATCH {
        update(state, at, body)
    } else {
        state.teams.remove(at);
        forget_team(state, org, id);
        no_content()
    }
}

/// Where team `id` of `org` is in the state's teams.
pub(super) fn find(state: &State, org: &str, id: &str) -> Option<usize> {
    state.teams.iter().position(|t| t.org == org && t.id == id)
}

/// Takes the deleted account `id` of `org` out of every team's `member_ids`.
pub(super) fn forget_member(state: &mut State, org: &str, id: &str) {
    for team in state.teams.iter_mut().filter(|t| t.org == org) {
        if team.member_ids.iter().any(|m| m == id) {
            team.member_ids.retain(|m| m != id);
            team.modified = now();
        }
    }
}

/// Takes the deleted team `id` of `org` out of every account's `team_ids`.
fn forget_team(state: &mut State, org: &str, id: &str) {
    for account in state.accounts.iter_mut().filter(|a| a.org == org) {
        if account.team_ids.iter().any(|t| t == id) {
            account.team_ids.retain(|t| t != id);
            account.modified = now();
        }
    }
}

fn list(state: &State, org: &str, query: Option<&str>) -> Reply {
    let Some(q) = ListQuery::parse(query) else {
        return validation();
    };
    let title = q.param("title").map(str::to_lowercase);
    let matching: Vec<Value> = state
        .teams
        .iter()
        .filter(|t| t.org == org)
        .filter(|t| title.as_ref().is_none_or(|w| t.title.to_lowercase() == *w))
        .map(Team::to_json)
        .collect();
    q.page(&matching)
}

/// Creates a team from a `{"team": {...}}` body (also [`super::AltBackend::seed_team`]).
pub(super) fn create(state: &mut State, org: &str, body: &[u8]) -> Reply {
    let Some(input) = team_input(body) else {
        return validation();
    };
    let Some(title) = input.get("title").and_then(title_value) else {
        return validation();
    };
    let member_ids = match input.get("member_ids") {
        Some(v) => match member_ids_input(state, org, v) {
            Ok(ids) => ids,
            Err(reply) => return reply,
        },
        None => Vec::new(),
    };
    if title_taken(state, org, &title, None) {
        return error(StatusCode::CONFLICT, "title_taken");
    }
    let id = new_id("team", |id| state.teams.iter().any(|t| t.id == id));
    let now = now();
    let team = Team {
        id,
        org: org.to_owned(),
        title,
        member_ids,
        created: now.clone(),
        modified: now,
    };
    let reply = team.reply(StatusCode::CREATED);
    state.teams.push(team);
    reply
}

/// Merges a `{"team": {...}}` body into the team at `at`.
fn update(state: &mut State, at: usize, body: &[u8]) -> Reply {
    let Some(input) = team_input(body) else {
        return validation();
    };
    let mut next = state.teams[at].clone();
    if let Some(v) = input.get("title") {
        let Some(title) = title_value(v) else {
            return validation();
        };
        next.title = title;
    }
    if let Some(v) = input.get("member_ids") {
        match member_ids_input(state, &next.org, v) {
            Ok(ids) => next.member_ids = ids,
            Err(reply) => return reply,
        }
    }
    if title_taken(state, &next.org, &next.title, Some(&next.id)) {
        return error(StatusCode::CONFLICT, "title_taken");
    }
    let current = &mut state.teams[at];
    if (&next.title, &next.member_ids) != (&current.title, &current.member_ids) {
        next.modified = now();
        *current = next;
    }
    current.reply(StatusCode::OK)
}

/// The `team` object of a create or update body.
fn team_input(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(mut o) => match o.remove("team")? {
            Value::Object(team) => Some(team),
            _ => None,
        },
        _ => None,
    }
}

/// A title: a non-blank string.
fn title_value(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// Checks a team's `member_ids` input: `Err` is the reply refusing it (`validation` when it is
/// not a list of ids, `unknown_member` when one is not an account of `org`).
fn member_ids_input(state: &State, org: &str, v: &Value) -> Result<Vec<String>, Reply> {
    let ids = id_list(v).ok_or_else(validation)?;
    let known = |id: &String| state.accounts.iter().any(|a| a.org == org && a.id == *id);
    if ids.iter().all(known) {
        Ok(ids)
    } else {
        Err(error(StatusCode::BAD_REQUEST, "unknown_member"))
    }
}

/// True when another team of `org` (not `except`) has `title`, ignoring case.
fn title_taken(state: &State, org: &str, title: &str, except: Option<&str>) -> bool {
    let title = title.to_lowercase();
    state
        .teams
        .iter()
        .any(|t| t.org == org && Some(t.id.as_str()) != except && t.title.to_lowercase() == title)
}
