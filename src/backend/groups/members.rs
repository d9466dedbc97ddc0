//! Membership in the backend's terms, for each model of `[groups.members]`: reading a group's
//! member ids, checking that ids name users, and applying a membership delta with bounded
//! parallel calls. Adding a present member and removing an absent one change nothing.

use super::super::calls::Backend;
use super::super::group_calls::{GroupBackend, MemberCall};
use super::super::group_spec::Membership;
use super::super::mapping::id_text;
use super::super::paths::{get_path, set_path};
use super::super::spec::NativeType;
use crate::auth::Tenant;
use crate::scim::error::ScimError;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use serde_json::Value;

/// Largest member list read for one group, a page of the member list call at a time.
const MAX_MEMBERS_READ: usize = 1 << 20;

/// A member as the backend lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The user's id.
    pub id: String,
    /// Its display name, when the backend gives one with the membership.
    pub display: Option<String>,
}

/// What a membership delta did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Members added (or found present).
    pub added: Vec<String>,
    /// Members removed (or found absent).
    pub removed: Vec<String>,
    /// The first failure, with the member it concerned; the rest was not tried or succeeded.
    pub failed: Option<(String, ScimError)>,
    /// The group vanished meanwhile.
    pub group_gone: bool,
}

/// A SCIM id as the native list holds ids.
fn native_id(id: &str, id_type: NativeType) -> Result<Value, ScimError> {
    match id_type {
        NativeType::Integer => id.parse::<i64>().map(Value::from).map_err(|_| {
            ScimError::invalid_value(format!(
                "{id:?} is not an id of this service (ids are integers)"
            ))
        }),
        _ => Ok(Value::String(id.to_string())),
    }
}

/// The member ids of a native list field (ids, or objects holding the id under `key`).
fn ids_in(list: Option<&Value>, key: Option<&[String]>) -> Vec<String> {
    let Some(Value::Array(items)) = list else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match key {
            Some(k) => get_path(item, k).and_then(id_text),
            None => id_text(item),
        })
        .collect()
}

/// The native list after removing `remove` and adding `add` to `current` (elements kept as
/// the backend holds them; new ones written as ids or `{key: id}`).
fn edited_list(
    current: Option<&Value>,
    key: Option<&[String]>,
    id_type: NativeType,
    add: &[String],
    remove: &[String],
) -> Result<Value, ScimError> {
    let mut items: Vec<Value> = match current {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let id_of = |item: &Value| match key {
        Some(k) => get_path(item, k).and_then(id_text),
        None => id_text(item),
    };
    items.retain(|item| id_of(item).is_none_or(|id| !remove.contains(&id)));
    for id in add {
        if items.iter().any(|item| id_of(item).as_ref() == Some(id)) {
            continue;
        }
        let value = native_id(id, id_type)?;
        items.push(match key {
            Some(k) => {
                let mut element = Value::Object(serde_json::Map::new());
                set_path(&mut element, k, value);
                element
            }
            None => value,
        });
    }
    Ok(Value::Array(items))
}

impl GroupBackend {
    /// The members of group `id` (`native` is the group as read), or `None` when the group
    /// vanished meanwhile.
    pub async fn members(
        &self,
        tenant: &Tenant,
        id: &str,
        native: &Value,
    ) -> Result<Vec<Listed>, ScimError> {
        match &self.api().members {
            Membership::Calls(calls) => {
                let (value, display) = (&calls.value, &calls.display);
                let page = self.list_members(tenant, id, 0, MAX_MEMBERS_READ).await?;
                Ok(page
                    .items
                    .iter()
                    .filter_map(|m| {
                        Some(Listed {
                            id: get_path(m, value).and_then(id_text)?,
                            display: display
                                .as_ref()
                                .and_then(|d| get_path(m, d))
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        })
                    })
                    .collect())
            }
            Membership::OnGroup { field, key, .. } => {
                Ok(ids_in(get_path(native, field), key.as_deref())
                    .into_iter()
                    .map(|id| Listed { id, display: None })
                    .collect())
            }
            Membership::OnUser { search, .. } => {
                let users = self.users();
                let page = users
                    .list(tenant, Some((search, id)), 0, MAX_MEMBERS_READ)
                    .await?;
                Ok(page
                    .items
                    .iter()
                    .filter_map(|u| super::super::mapping::native_id(users.api(), u))
                    .map(|id| Listed { id, display: None })
                    .collect())
            }
        }
    }

    /// The ids among `ids` that name no user of the tenant, checked with bounded parallel reads.
    pub async fn unknown_users(
        &self,
        tenant: &Tenant,
        ids: &[String],
    ) -> Result<Vec<String>, ScimError> {
        let users: &Backend = self.users();
        let checks = ids
            .iter()
            .map(|id| {
                async move {
                    users
                        .get(tenant, id)
                        .await
                        .map(|found| (id, found.is_some()))
                }
                .boxed()
            })
            .collect();
        let checks = at_most(checks, self.api().member_calls_at_once).await;
        let mut unknown = std::collections::HashSet::new();
        for check in checks {
            let (id, known) = check?;
            if !known {
                unknown.insert(id);
            }
        }
        Ok(ids
            .iter()
            .filter(|id| unknown.contains(id))
            .cloned()
            .collect())
    }

    /// Adds `add` to and removes `remove` from group `id` (`native` as just read, under the
    /// group's lock). Stops at the first failure and says what was done before it.
    pub async fn apply_members(
        &self,
        tenant: &Tenant,
        id: &str,
        native: &Value,
        add: &[String],
        remove: &[String],
    ) -> Applied {
        match &self.api().members {
            Membership::Calls(_) => self.member_calls(tenant, id, add, remove).await,
            Membership::OnGroup {
                field,
                key,
                id_type,
            } => {
                let written = edited_list(
                    get_path(native, field),
                    key.as_deref(),
                    *id_type,
                    add,
                    remove,
                )
                .map(|list| {
                    let mut body = Value::Object(serde_json::Map::new());
                    set_path(&mut body, field, list);
                    body
                });
                let outcome = match written {
                    Ok(body) => self.update(tenant, id, &body).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(Some(_)) => Applied {
                        added: add.to_vec(),
                        removed: remove.to_vec(),
                        ..Applied::default()
                    },
                    Ok(None) => Applied {
                        group_gone: true,
                        ..Applied::default()
                    },
                    Err(e) => Applied {
                        failed: Some((id.to_string(), e)),
                        ..Applied::default()
                    },
                }
            }
            Membership::OnUser { field, id_type, .. } => {
                self.user_updates(tenant, id, field, *id_type, add, remove)
                    .await
            }
        }
    }

    async fn member_calls(
        &self,
        tenant: &Tenant,
        group: &str,
        add: &[String],
        remove: &[String],
    ) -> Applied {
        let calls = add
            .iter()
            .map(|m| (m, true))
            .chain(remove.iter().map(|m| (m, false)));
        let tasks = calls
            .map(|(member, adding)| {
                async move {
                    let r = self.member_call(tenant, group, member, adding).await;
                    (member, adding, r)
                }
                .boxed()
            })
            .collect();
        let results = at_most(tasks, self.api().member_calls_at_once).await;
        let mut applied = Applied::default();
        for (member, adding, result) in results {
            match result {
                Ok(MemberCall::Done) if adding => applied.added.push(member.clone()),
                Ok(MemberCall::Done) => applied.removed.push(member.clone()),
                Ok(MemberCall::NoGroup) => applied.group_gone = true,
                Err(e) => {
                    if applied.failed.is_none() {
                        applied.failed = Some((member.clone(), e));
                    }
                }
            }
        }
        applied
    }

    async fn user_updates(
        &self,
        tenant: &Tenant,
        group: &str,
        field: &[String],
        id_type: NativeType,
        add: &[String],
        remove: &[String],
    ) -> Applied {
        let users = self.users();
        let paths: Vec<&[String]> = vec![field];
        let group_id = match native_id(group, id_type) {
            Ok(v) => id_text(&v).unwrap_or_default(),
            Err(e) => {
                return Applied {
                    failed: Some((group.to_string(), e)),
                    ..Applied::default()
                }
            }
        };
        let edits = add
            .iter()
            .map(|m| (m, true))
            .chain(remove.iter().map(|m| (m, false)));
        let paths = &paths;
        let group_id = &group_id;
        let tasks = edits
            .map(|(member, adding)| {
                async move {
                    let read = match users.get_versioned(tenant, member).await {
                        Ok(Some(read)) => read,
                        Ok(None) if adding => {
                            let e = ScimError::invalid_value(format!("no user with id {member:?}"));
                            return (member, adding, Err(e));
                        }
                        Ok(None) => return (member, adding, Ok(None)),
                        Err(e) => return (member, adding, Err(e)),
                    };
                    let (plus, minus): (&[String], &[String]) = if adding {
                        (std::slice::from_ref(group_id), &[])
                    } else {
                        (&[], std::slice::from_ref(group_id))
                    };
                    let change = |native: &Value| {
                        let list =
                            edited_list(get_path(native, field), None, id_type, plus, minus)?;
                        let mut body = Value::Object(serde_json::Map::new());
                        set_path(&mut body, field, list);
                        Ok(body)
                    };
                    let r = users
                        .modify(tenant, member, Some(read), paths, change)
                        .await
                        .map(|u| u.map(|_| ()));
                    (member, adding, r)
                }
                .boxed()
            })
            .collect();
        let results = at_most(tasks, self.api().member_calls_at_once).await;
        let mut applied = Applied::default();
        for (member, adding, result) in results {
            match result {
                Ok(_) if adding => applied.added.push(member.clone()),
                Ok(_) => applied.removed.push(member.clone()),
                Err(e) => {
                    if applied.failed.is_none() {
                        applied.failed = Some((member.clone(), e));
                    }
                }
            }
        }
        applied
    }
}

/// Runs `tasks` with at most `at_once` in flight, answering in completion order.
///
/// The tasks are boxed before they reach the stream: a stream mapping borrowed items
/// through a closure makes the `Send` bound of the directory's futures unprovable.
async fn at_most<'a, T: Send + 'a>(tasks: Vec<BoxFuture<'a, T>>, at_once: usize) -> Vec<T> {
    stream::iter(tasks)
        .buffer_unordered(at_once.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_of_ids_are_edited_idempotently_in_place() {
        let current = json!([1, 2, 3]);
        let out = edited_list(
            Some(&current),
            None,
            NativeType::Integer,
            &ids(&["3", "4"]),
            &ids(&["1", "9"]),
        )
        .unwrap();
        assert_eq!(out, json!([2, 3, 4]));
        assert_eq!(ids_in(Some(&out), None), ids(&["2", "3", "4"]));
    }

    #[test]
    fn lists_of_objects_keep_what_the_backend_added() {
        let key = vec!["user_id".to_string()];
        let current = json!([{"user_id": "a", "role": "owner"}]);
        let out = edited_list(
            Some(&current),
            Some(&key),
            NativeType::String,
            &ids(&["b", "a"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            out,
            json!([{"user_id": "a", "role": "owner"}, {"user_id": "b"}])
        );
        assert_eq!(ids_in(Some(&out), Some(&key)), ids(&["a", "b"]));
    }

    #[test]
    fn a_non_integer_id_is_refused_for_an_integer_list() {
        let e = edited_list(None, None, NativeType::Integer, &ids(&["x"]), &[]).unwrap_err();
        assert_eq!(e.status, 400);
    }
}
