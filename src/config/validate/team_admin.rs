//! Validation of `[team_admin]`: where the team admins' page and API live, and who counts as a
//! team's admin. It needs the guard's identity source to name the caller's tenant and role.

use super::validator::Validator;
use crate::config::file::{GuardFile, TeamAdminFile};
use crate::team_admin::TeamAdminSettings;

impl Validator<'_> {
    pub(super) fn team_admin(
        &mut self,
        t: &TeamAdminFile,
        guard: Option<&GuardFile>,
        scim_base: &str,
    ) -> Option<TeamAdminSettings> {
        let path = t.path.get_ref();
        let well_formed = path.starts_with('/')
            && path.len() > 1
            && !path.ends_with('/')
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-_.~".contains(c));
        if !well_formed {
            self.at(
                &t.path,
                format!(
                    "team_admin.path {path:?} must be an absolute path like /scim-admin \
                     (letters, digits, - _ . ~, no trailing /)"
                ),
            );
        }
        let under = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        if under(path, scim_base) || under(scim_base, path) {
            self.at(
                &t.path,
                format!("team_admin.path {path:?} overlaps the SCIM base path {scim_base:?}"),
            );
        }
        match guard.map(|g| &g.identity) {
            None => self.at(
                &t.path,
                "[team_admin] identifies callers as the guard does: add [guard.identity]".into(),
            ),
            Some(i) => {
                let tenant = i.tenant_field.is_some()
                    || i.tenant_claim.is_some()
                    || i.tenant_header.is_some();
                let role =
                    i.role_field.is_some() || i.role_claim.is_some() || i.role_header.is_some();
                if !(tenant && role) {
                    self.at(
                        &i.source,
                        "[team_admin] needs the caller's team and role: set tenant_field and \
                         role_field (whoami), tenant_claim and role_claim (jwt), or \
                         tenant_header and role_header (header)"
                            .into(),
                    );
                }
            }
        }
        let admin_roles = t
            .admin_roles
            .clone()
            .unwrap_or_else(|| vec!["admin".into()]);
        if admin_roles.iter().any(|r| r.trim().is_empty()) || admin_roles.is_empty() {
            self.at(
                &t.path,
                "team_admin.admin_roles must name at least one non-empty role".into(),
            );
        }
        Some(TeamAdminSettings {
            path: path.clone(),
            admin_roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::from_str;
    use std::path::Path;

    const DEMO: &str = include_str!("../../../conf/demo.toml");

    fn messages(text: &str) -> Vec<String> {
        match from_str(text, Path::new("t.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| p.message).collect(),
        }
    }

    #[test]
    fn the_demo_serves_the_page_at_scim_admin() {
        let c = from_str(DEMO, Path::new("conf/demo.toml")).unwrap();
        let t = c.team_admin.unwrap();
        assert_eq!(
            (t.path.as_str(), t.admin_roles),
            ("/scim-admin", vec!["admin".to_string()])
        );
    }

    #[test]
    fn bad_paths_a_missing_role_and_no_roles_are_refused() {
        for (from, to, expected) in [
            (
                "path = \"/scim-admin\"",
                "path = \"scim-admin/\"",
                "absolute path",
            ),
            (
                "path = \"/scim-admin\"",
                "path = \"/scim/v2/admin\"",
                "overlaps",
            ),
            ("role_field = \"role\"\n", "", "caller's team and role"),
            (
                "admin_roles = [\"admin\"]",
                "admin_roles = []",
                "at least one",
            ),
        ] {
            assert!(DEMO.contains(from), "{from}");
            let found = messages(&DEMO.replace(from, to));
            assert!(
                found.iter().any(|m| m.contains(expected)),
                "{expected}: {found:?}"
            );
        }
        let start = DEMO.find("# ---- the guard").unwrap();
        let end = DEMO.find("# ---- team admins").unwrap();
        let found = messages(&format!("{}{}", &DEMO[..start], &DEMO[end..]));
        assert!(
            found.iter().any(|m| m.contains("add [guard.identity]")),
            "{found:?}"
        );
    }
}
