//! Validation of `[groups]`: the group calls, field mappings over the Group schema, filters,
//! errors and the membership model of `[groups.members]`, each mistake at its position.

use super::validator::{dotted, Validator};
use crate::backend::group_spec::{GroupApi, MemberCalls, Membership};
use crate::backend::spec::{ErrorRule, FieldMap, NativeType, Var};
use crate::config::file::{GroupsFile, MembersFile};
use crate::scim::schema::ResourceKind;
use serde_spanned::Spanned;

/// Most member ids one request may name, unless `max_members_per_request` says otherwise.
const DEFAULT_MAX_MEMBERS: usize = 1000;
/// Member calls in flight for one request, unless `member_calls_at_once` says otherwise.
const DEFAULT_CALLS_AT_ONCE: usize = 8;

impl Validator<'_> {
    pub(super) fn groups(&mut self, g: &GroupsFile) -> Option<GroupApi> {
        let one = &[Var::Tenant, Var::Id];
        let list = self.list(&g.list, &[Var::Tenant]);
        let get = self.operation(&g.get, one);
        let create = self.operation(&g.create, &[Var::Tenant]);
        let update = self.operation(&g.update, one);
        let delete = self.operation(&g.delete, one);
        let time_format = self.time_format(g.time_format.as_ref(), "groups");
        self.kind = ResourceKind::Group;
        let fields: Vec<Option<FieldMap>> = g.fields.iter().map(|f| self.field(f)).collect();
        let filters = self.filters(&g.filters, &fields);
        self.kind = ResourceKind::User;
        self.display_name_mapped(g, &fields);
        let errors: Vec<Option<ErrorRule>> = g.errors.iter().map(|e| self.error_rule(e)).collect();
        let members = self.membership(&g.members);
        let patch_returns_group = match g.patch_answer.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None | Some((_, "no_content")) => false,
            Some((_, "group")) => true,
            Some((p, other)) => {
                self.at(
                    p,
                    format!("groups.patch_answer {other:?}: expected \"no_content\" (204) or \"group\" (200 with the group)"),
                );
                false
            }
        };
        Some(GroupApi {
            id_field: dotted(g.id_field.as_deref().unwrap_or("id")),
            created_field: g.created_field.as_deref().map(dotted),
            modified_field: g.modified_field.as_deref().map(dotted),
            time_format: time_format?,
            list: list?,
            get: get?,
            create: create?,
            update: update?,
            delete: delete?,
            filters,
            fields: fields.into_iter().collect::<Option<_>>()?,
            errors: errors.into_iter().collect::<Option<_>>()?,
            members: members?,
            max_members_per_request: self.positive(
                g.max_members_per_request.as_ref(),
                "groups.max_members_per_request",
                DEFAULT_MAX_MEMBERS,
            ),
            member_calls_at_once: self.positive(
                g.member_calls_at_once.as_ref(),
                "groups.member_calls_at_once",
                DEFAULT_CALLS_AT_ONCE,
            ),
            patch_returns_group,
        })
    }

    /// The backend names a group by its `displayName`, so a field must carry it.
    fn display_name_mapped(&mut self, g: &GroupsFile, fields: &[Option<FieldMap>]) {
        let mapped = fields
            .iter()
            .flatten()
            .filter_map(|f| f.scim.as_ref())
            .any(|t| t.attr.attr.name == "displayName");
        let members = fields.iter().zip(&g.fields).find(|(f, _)| {
            f.as_ref()
                .and_then(|f| f.scim.as_ref())
                .is_some_and(|t| t.attr.attr.name == "members")
        });
        if let Some((_, file)) = members {
            self.at(
                &file.native,
                "groups.fields cannot map members: [groups.members] says where members are kept"
                    .into(),
            );
        }
        if !mapped {
            self.at(
                &g.members,
                "[[groups.fields]] must map displayName to the native field that names a group"
                    .into(),
            );
        }
    }

    fn positive(&mut self, v: Option<&Spanned<usize>>, name: &str, default: usize) -> usize {
        match v {
            Some(n) if *n.get_ref() == 0 => {
                self.at(n, format!("{name} must be at least 1"));
                default
            }
            Some(n) => *n.get_ref(),
            None => default,
        }
    }

    fn membership(&mut self, m: &Spanned<MembersFile>) -> Option<Membership> {
        let file = m.get_ref();
        let member = &[Var::Tenant, Var::Id, Var::Member];
        match file.model.get_ref().as_str() {
            "calls" => {
                let (Some(add), Some(remove), Some(list), Some(value)) =
                    (&file.add, &file.remove, &file.list, &file.value)
                else {
                    self.at(
                        &file.model,
                        "model = \"calls\" needs add, remove, list and value (the listed member's id field)".into(),
                    );
                    return None;
                };
                let add = self.operation(add, member);
                let remove = self.operation(remove, member);
                let list = self.list(list, &[Var::Tenant, Var::Id]);
                self.unused_member_keys(file, &["field", "native_type", "search"]);
                Some(Membership::Calls(Box::new(MemberCalls {
                    add: add?,
                    remove: remove?,
                    list: list?,
                    value: dotted(value.get_ref()),
                    display: file.display.as_deref().map(dotted),
                })))
            }
            "group_field" => {
                let field = self.member_field(file)?;
                self.unused_member_keys(file, &["add", "remove", "list", "search", "display"]);
                Some(Membership::OnGroup {
                    field,
                    key: file.value.as_ref().map(|v| dotted(v.get_ref())),
                    id_type: self.id_type(file)?,
                })
            }
            "user_field" => {
                let field = self.member_field(file)?;
                self.unused_member_keys(file, &["add", "remove", "list", "value", "display"]);
                let Some(search) = &file.search else {
                    self.at(
                        &file.model,
                        "model = \"user_field\" needs search: the users list's query parameter that finds a group's members".into(),
                    );
                    return None;
                };
                Some(Membership::OnUser {
                    field,
                    id_type: self.id_type(file)?,
                    search: search.get_ref().clone(),
                })
            }
            other => {
                self.at(
                    &file.model,
                    format!("groups.members.model {other:?}: expected \"calls\", \"group_field\" or \"user_field\""),
                );
                None
            }
        }
    }

    fn member_field(&mut self, file: &MembersFile) -> Option<Vec<String>> {
        match &file.field {
            Some(f) if !f.get_ref().is_empty() => Some(dotted(f.get_ref())),
            _ => {
                self.at(
                    &file.model,
                    format!(
                        "model = {:?} needs field: the native list that holds the ids",
                        file.model.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn id_type(&mut self, file: &MembersFile) -> Option<NativeType> {
        match file.native_type.as_ref().map(|t| (t, t.get_ref().as_str())) {
            None | Some((_, "string")) => Some(NativeType::String),
            Some((_, "integer")) => Some(NativeType::Integer),
            Some((t, other)) => {
                self.at(
                    t,
                    format!(
                        "groups.members.native_type {other:?}: expected \"string\" or \"integer\""
                    ),
                );
                None
            }
        }
    }

    fn unused_member_keys(&mut self, file: &MembersFile, keys: &[&str]) {
        let set = |k: &str| match k {
            "add" => file.add.is_some(),
            "remove" => file.remove.is_some(),
            "list" => file.list.is_some(),
            "value" => file.value.is_some(),
            "display" => file.display.is_some(),
            "field" => file.field.is_some(),
            "native_type" => file.native_type.is_some(),
            "search" => file.search.is_some(),
            _ => false,
        };
        for key in keys.iter().filter(|k| set(k)) {
            self.at(
                &file.model,
                format!(
                    "groups.members.{key} does not apply to model = {:?}",
                    file.model.get_ref()
                ),
            );
        }
    }
}
