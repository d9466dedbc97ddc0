//! The member record of the demo backend and the changes that can be made to it.

use serde::Serialize;

/// Whether a member may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Can log in; sessions work.
    Active,
    /// Cannot log in; existing sessions stop working.
    Suspended,
}

impl Status {
    /// The stored and serialised form.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }

    /// Parses the stored and serialised form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Status::Active),
            "suspended" => Some(Status::Suspended),
            _ => None,
        }
    }
}

/// A member's role within their team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Manages the team's members.
    Admin,
    /// Ordinary member.
    Member,
}

impl Role {
    /// The stored and serialised form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Parses the stored and serialised form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// A member as the API shows it (never with the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Member {
    pub id: i64,
    pub team: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub title: Option<String>,
    pub status: Status,
    pub role: Role,
    pub created_at: String,
    pub updated_at: String,
}

impl Member {
    /// Whether this member administers `team`.
    pub fn is_admin_of(&self, team: &str) -> bool {
        self.role == Role::Admin && self.team == team
    }
}

/// Field values to change on a member; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemberChanges {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    /// `Some(None)` clears the title.
    pub title: Option<Option<String>>,
    pub status: Option<Status>,
    pub role: Option<Role>,
}

impl MemberChanges {
    /// Applies the changes to `member` (timestamps are the store's business).
    pub fn apply_to(&self, member: &mut Member) {
        set_if(&mut member.email, &self.email);
        set_if(&mut member.first_name, &self.first_name);
        set_if(&mut member.last_name, &self.last_name);
        set_if(&mut member.display_name, &self.display_name);
        set_if(&mut member.title, &self.title);
        set_if(&mut member.status, &self.status);
        set_if(&mut member.role, &self.role);
    }
}

fn set_if<T: Clone>(slot: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *slot = v.clone();
    }
}

/// A member to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewMember {
    pub team: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub title: Option<String>,
    pub status: Status,
    pub role: Role,
    /// Already hashed; `None` means the member cannot log in with a password.
    pub password_hash: Option<String>,
}

impl NewMember {
    /// A new member of `team` from parsed fields; absent fields get defaults
    /// (empty names, display name from the names or the email, active, member).
    pub fn from_changes(
        team: &str,
        email: String,
        changes: MemberChanges,
        password_hash: Option<String>,
    ) -> Self {
        let first_name = changes.first_name.unwrap_or_default();
        let last_name = changes.last_name.unwrap_or_default();
        let display_name = changes
            .display_name
            .unwrap_or_else(|| default_display_name(&first_name, &last_name, &email));
        NewMember {
            team: team.to_owned(),
            email,
            first_name,
            last_name,
            display_name,
            title: changes.title.flatten(),
            status: changes.status.unwrap_or(Status::Active),
            role: changes.role.unwrap_or(Role::Member),
            password_hash,
        }
    }
}

fn default_display_name(first: &str, last: &str, email: &str) -> String {
    let joined = format!("{first} {last}");
    let trimmed = joined.trim();
    if trimmed.is_empty() {
        email.to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Member {
        Member {
            id: 1,
            team: "acme".into(),
            email: "a@acme.test".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            display_name: "A B".into(),
            title: Some("Boss".into()),
            status: Status::Active,
            role: Role::Member,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn apply_keeps_absent_and_clears_null_title() {
        let mut m = sample();
        let changes = MemberChanges {
            first_name: Some("Z".into()),
            title: Some(None),
            ..Default::default()
        };
        changes.apply_to(&mut m);
        assert_eq!(m.first_name, "Z");
        assert_eq!(m.last_name, "B");
        assert_eq!(m.title, None);
    }

    #[test]
    fn new_member_defaults() {
        let n = NewMember::from_changes("t", "x@y.z".into(), MemberChanges::default(), None);
        assert_eq!(n.display_name, "x@y.z");
        assert_eq!(n.status, Status::Active);
        assert_eq!(n.role, Role::Member);
        let c = MemberChanges {
            first_name: Some("Ann".into()),
            ..Default::default()
        };
        let n = NewMember::from_changes("t", "x@y.z".into(), c, None);
        assert_eq!(n.display_name, "Ann");
    }

    #[test]
    fn serialises_like_the_legacy_api() {
        let v = serde_json::to_value(sample()).unwrap_or_default();
        assert_eq!(v["status"], "active");
        assert_eq!(v["role"], "member");
        assert_eq!(v["id"], 1);
        assert!(v.get("password_hash").is_none());
    }

    #[test]
    fn enums_roundtrip() {
        for s in [Status::Active, Status::Suspended] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for r in [Role::Admin, Role::Member] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Status::parse("Active"), None);
    }
}
