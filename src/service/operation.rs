//! The one SCIM router: a request's method and path (after the base path) become a typed
//! [`Operation`], which the service handles and the proxy labels metrics and the provisioning
//! log with. Endpoint names compare ignoring case.

use http::Method;

/// What a request to `/Groups` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOperation {
    /// `POST /Groups/.search`.
    Search,
    /// `GET /Groups`.
    List,
    /// `POST /Groups`.
    Create,
    /// `GET /Groups/{id}`.
    Get(String),
    /// `PUT /Groups/{id}`.
    Replace(String),
    /// `PATCH /Groups/{id}`.
    Patch(String),
    /// `DELETE /Groups/{id}`.
    Delete(String),
}

/// What a SCIM request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `GET /ServiceProviderConfig`.
    ServiceProviderConfig,
    /// `GET /Schemas`.
    Schemas,
    /// `GET /Schemas/{urn}`.
    Schema(String),
    /// `GET /ResourceTypes`.
    ResourceTypes,
    /// `GET /ResourceTypes/{name}`.
    ResourceType(String),
    /// `POST /.search` (RFC 7644 §3.4.3): every resource type served.
    RootSearch,
    /// `POST /Users/.search` (RFC 7644 §3.4.3).
    Search,
    /// `GET /Users`.
    List,
    /// `POST /Users`.
    Create,
    /// `GET /Users/{id}`.
    Get(String),
    /// `PUT /Users/{id}`.
    Replace(String),
    /// `PATCH /Users/{id}`.
    Patch(String),
    /// `DELETE /Users/{id}`.
    Delete(String),
    /// An operation on `/Groups`.
    Group(GroupOperation),
    /// A method the endpoint does not take.
    NotAllowed {
        /// The methods it takes, for the `Allow` header.
        allowed: &'static str,
        /// Whether the endpoint is `/Users`, `/Groups` or below.
        resource: bool,
    },
    /// `/Bulk` (not supported).
    Bulk,
    /// No SCIM endpoint at this path.
    Unknown,
}

impl Operation {
    /// Routes `method` on `path` (the part after the base path, like `/Users/7`).
    pub fn route(method: &Method, path: &str) -> Operation {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let is = |s: &str, name: &str| s.eq_ignore_ascii_case(name);
        let get_only = |op: Operation| {
            if method == Method::GET {
                op
            } else {
                Operation::NotAllowed {
                    allowed: "GET",
                    resource: false,
                }
            }
        };
        let search = |op: Operation, resource: bool| {
            if method == Method::POST {
                op
            } else {
                Operation::NotAllowed {
                    allowed: "POST",
                    resource,
                }
            }
        };
        match segments.as_slice() {
            [r] if is(r, "ServiceProviderConfig") => get_only(Operation::ServiceProviderConfig),
            [r] if is(r, "Schemas") => get_only(Operation::Schemas),
            [r, id] if is(r, "Schemas") => get_only(Operation::Schema(id.to_string())),
            [r] if is(r, "ResourceTypes") => get_only(Operation::ResourceTypes),
            [r, id] if is(r, "ResourceTypes") => get_only(Operation::ResourceType(id.to_string())),
            [r] if is(r, ".search") => search(Operation::RootSearch, false),
            [u, r] if is(u, "Users") && is(r, ".search") => search(Operation::Search, true),
            [g, r] if is(g, "Groups") && is(r, ".search") => {
                search(Operation::Group(GroupOperation::Search), true)
            }
            [r] if is(r, "Users") => match *method {
                Method::GET => Operation::List,
                Method::POST => Operation::Create,
                _ => Operation::NotAllowed {
                    allowed: "GET, POST",
                    resource: true,
                },
            },
            [r] if is(r, "Groups") => match *method {
                Method::GET => Operation::Group(GroupOperation::List),
                Method::POST => Operation::Group(GroupOperation::Create),
                _ => Operation::NotAllowed {
                    allowed: "GET, POST",
                    resource: true,
                },
            },
            [r, id] if is(r, "Groups") => {
                let id = id.to_string();
                Operation::Group(match *method {
                    Method::GET => GroupOperation::Get(id),
                    Method::PUT => GroupOperation::Replace(id),
                    Method::PATCH => GroupOperation::Patch(id),
                    Method::DELETE => GroupOperation::Delete(id),
                    _ => {
                        return Operation::NotAllowed {
                            allowed: "GET, PUT, PATCH, DELETE",
                            resource: true,
                        }
                    }
                })
            }
            [r, id] if is(r, "Users") => {
                let id = id.to_string();
                match *method {
                    Method::GET => Operation::Get(id),
                    Method::PUT => Operation::Replace(id),
                    Method::PATCH => Operation::Patch(id),
                    Method::DELETE => Operation::Delete(id),
                    _ => Operation::NotAllowed {
                        allowed: "GET, PUT, PATCH, DELETE",
                        resource: true,
                    },
                }
            }
            [r, ..] if is(r, "Bulk") => Operation::Bulk,
            _ => Operation::Unknown,
        }
    }

    /// The label of metrics and the provisioning log.
    pub fn label(&self) -> &'static str {
        match self {
            Operation::RootSearch | Operation::Search => "search",
            Operation::List => "list",
            Operation::Create => "create",
            Operation::Get(_) => "get",
            Operation::Replace(_) => "replace",
            Operation::Patch(_) => "patch",
            Operation::Delete(_) => "delete",
            Operation::Group(g) => match g {
                GroupOperation::Search => "group_search",
                GroupOperation::List => "group_list",
                GroupOperation::Create => "group_create",
                GroupOperation::Get(_) => "group_get",
                GroupOperation::Replace(_) => "group_replace",
                GroupOperation::Patch(_) => "group_patch",
                GroupOperation::Delete(_) => "group_delete",
            },
            Operation::NotAllowed { resource: true, .. } => "other",
            _ => "discovery",
        }
    }

    /// Whether the operation changes a user or a group (and goes into the provisioning log).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Operation::Create
                | Operation::Replace(_)
                | Operation::Patch(_)
                | Operation::Delete(_)
                | Operation::Group(
                    GroupOperation::Create
                        | GroupOperation::Replace(_)
                        | GroupOperation::Patch(_)
                        | GroupOperation::Delete(_)
                )
        )
    }

    /// Whether the operation creates a resource (whose id is in the answer).
    pub fn is_create(&self) -> bool {
        matches!(
            self,
            Operation::Create | Operation::Group(GroupOperation::Create)
        )
    }

    /// The id of the user or group the operation addresses, if it names one.
    pub fn resource_id(&self) -> Option<&str> {
        match self {
            Operation::Get(id)
            | Operation::Replace(id)
            | Operation::Patch(id)
            | Operation::Delete(id)
            | Operation::Group(
                GroupOperation::Get(id)
                | GroupOperation::Replace(id)
                | GroupOperation::Patch(id)
                | GroupOperation::Delete(id),
            ) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, path: &str) -> Operation {
        Operation::route(&method, path)
    }

    #[test]
    fn users_endpoints_by_method() {
        assert_eq!(route(Method::GET, "/Users"), Operation::List);
        assert_eq!(route(Method::POST, "/users"), Operation::Create);
        assert_eq!(route(Method::GET, "/Users/7"), Operation::Get("7".into()));
        assert_eq!(
            route(Method::PUT, "/Users/7"),
            Operation::Replace("7".into())
        );
        assert_eq!(
            route(Method::PATCH, "//Users/7/"),
            Operation::Patch("7".into())
        );
        assert_eq!(
            route(Method::DELETE, "/USERS/7"),
            Operation::Delete("7".into())
        );
        assert_eq!(
            route(Method::POST, "/Users/7"),
            Operation::NotAllowed {
                allowed: "GET, PUT, PATCH, DELETE",
                resource: true
            }
        );
        assert_eq!(
            route(Method::DELETE, "/Users"),
            Operation::NotAllowed {
                allowed: "GET, POST",
                resource: true
            }
        );
    }

    #[test]
    fn search_discovery_and_unsupported_endpoints() {
        assert_eq!(route(Method::POST, "/.search"), Operation::RootSearch);
        assert_eq!(route(Method::POST, "/Users/.search"), Operation::Search);
        assert_eq!(
            route(Method::GET, "/Users/.search"),
            Operation::NotAllowed {
                allowed: "POST",
                resource: true
            }
        );
        assert_eq!(route(Method::GET, "/schemas"), Operation::Schemas);
        assert_eq!(
            route(Method::GET, "/Schemas/urn:x"),
            Operation::Schema("urn:x".into())
        );
        assert_eq!(
            route(Method::POST, "/ServiceProviderConfig"),
            Operation::NotAllowed {
                allowed: "GET",
                resource: false
            }
        );
        assert_eq!(
            route(Method::GET, "/ResourceTypes/User"),
            Operation::ResourceType("User".into())
        );
        assert_eq!(route(Method::POST, "/Bulk"), Operation::Bulk);
        assert_eq!(
            route(Method::GET, "/Groups/1"),
            Operation::Group(GroupOperation::Get("1".into()))
        );
        assert_eq!(
            route(Method::POST, "/groups/.search"),
            Operation::Group(GroupOperation::Search)
        );
        assert_eq!(route(Method::PATCH, "/Groups/1").label(), "group_patch");
        assert!(route(Method::DELETE, "/Groups/1").is_write());
        assert_eq!(route(Method::PUT, "/Groups/9").resource_id(), Some("9"));
        assert_eq!(
            route(Method::POST, "/Groups/1"),
            Operation::NotAllowed {
                allowed: "GET, PUT, PATCH, DELETE",
                resource: true
            }
        );
        assert_eq!(route(Method::GET, "/Users/7/x"), Operation::Unknown);
        assert_eq!(route(Method::GET, "/Other/.search"), Operation::Unknown);
    }

    #[test]
    fn labels_and_writes() {
        assert_eq!(route(Method::GET, "/Users").label(), "list");
        assert_eq!(route(Method::PATCH, "/Users/7").label(), "patch");
        assert_eq!(route(Method::POST, "/Users/.search").label(), "search");
        assert_eq!(route(Method::GET, "/Schemas").label(), "discovery");
        assert_eq!(route(Method::POST, "/Users/7").label(), "other");
        assert!(route(Method::DELETE, "/Users/7").is_write());
        assert!(!route(Method::GET, "/Users/7").is_write());
        assert_eq!(route(Method::PUT, "/Users/7").resource_id(), Some("7"));
        assert_eq!(route(Method::POST, "/Users").resource_id(), None);
    }
}
