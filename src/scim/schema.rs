//! The RFC 7643 User schemas (core + enterprise extension) and the Group schema as static data,
//! and the resolvers that turn a case-insensitive, possibly URN-qualified attribute name into its
//! canonical definition.

/// URN of the core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the enterprise User extension.
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// URN of the core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise URN as older Entra senders misspell it (no colon before `User`).
const ENTERPRISE_SCHEMA_MISSPELT: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User";

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// Text.
    String,
    /// `true` or `false`.
    Boolean,
    /// A number with a fraction.
    Decimal,
    /// A whole number.
    Integer,
    /// An RFC 3339 time.
    DateTime,
    /// A URI or resource id.
    Reference,
    /// Base64 data.
    Binary,
    /// An object of sub-attributes.
    Complex,
}

impl AttrType {
    /// The wire spelling used in `/Schemas`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Binary => "binary",
            AttrType::Complex => "complex",
        }
    }
}

/// Whether and how a client may write an attribute (RFC 7643 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the server only.
    ReadOnly,
    /// Written and read by clients.
    ReadWrite,
    /// Written once, at creation.
    Immutable,
    /// Written but never returned.
    WriteOnly,
}

impl Mutability {
    /// The wire spelling used in `/Schemas`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute is returned (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Unless `attributes` or `excludedAttributes` leave it out.
    Default,
    /// Only when `attributes` names it (or one of its sub-attributes).
    Request,
}

impl Returned {
    /// The wire spelling used in `/Schemas`.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// One attribute definition.
#[derive(Debug)]
pub struct AttrDef {
    /// Canonical name (the case used in responses).
    pub name: &'static str,
    /// Data type.
    pub ty: AttrType,
    /// True for arrays.
    pub multi_valued: bool,
    /// True when string comparisons are case-sensitive.
    pub case_exact: bool,
    /// Who may write it.
    pub mutability: Mutability,
    /// True when the attribute must be present on create.
    pub required: bool,
    /// Sub-attributes of a complex attribute.
    pub sub_attributes: &'static [AttrDef],
    /// One-line description for `/Schemas`.
    pub description: &'static str,
    /// When it is returned.
    pub returned: Returned,
    /// The only values the gateway accepts, advertised as `canonicalValues` (empty: any).
    pub canonical_values: &'static [&'static str],
}

impl AttrDef {
    /// The sub-attribute called `name`, compared case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&'static AttrDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema: URN, name and top-level attributes.
#[derive(Debug)]
pub struct SchemaDef {
    /// The schema URN.
    pub id: &'static str,
    /// Human name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Top-level attributes.
    pub attributes: &'static [AttrDef],
}

impl SchemaDef {
    /// The top-level attribute called `name`, compared case-insensitively.
    pub fn attr(&self, name: &str) -> Option<&'static AttrDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

const fn attr(name: &'static str, ty: AttrType, description: &'static str) -> AttrDef {
    AttrDef {
        name,
        ty,
        multi_valued: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        required: false,
        sub_attributes: &[],
        description,
        returned: Returned::Default,
        canonical_values: &[],
    }
}

const fn string(name: &'static str, description: &'static str) -> AttrDef {
    attr(name, AttrType::String, description)
}

const fn complex(
    name: &'static str,
    multi_valued: bool,
    sub_attributes: &'static [AttrDef],
    description: &'static str,
) -> AttrDef {
    AttrDef {
        multi_valued,
        sub_attributes,
        ..attr(name, AttrType::Complex, description)
    }
}

/// Sub-attributes shared by the plain multi-valued attributes (emails, phoneNumbers, ...).
const MULTI_SUBS: &[AttrDef] = &[
    string("value", "The attribute's value."),
    string("display", "A human-readable name."),
    string("type", "A label indicating the attribute's function."),
    attr(
        "primary",
        AttrType::Boolean,
        "The primary or preferred value.",
    ),
];

const NAME_SUBS: &[AttrDef] = &[
    string("formatted", "The full name, formatted for display."),
    string("familyName", "The family name."),
    string("givenName", "The given name."),
    string("middleName", "The middle name(s)."),
    string("honorificPrefix", "The honorific prefix (Ms., Dr.)."),
    string("honorificSuffix", "The honorific suffix (III, Jr.)."),
];

const ADDRESS_SUBS: &[AttrDef] = &[
    string("formatted", "The full mailing address."),
    string("streetAddress", "The street address."),
    string("locality", "The city or locality."),
    string("region", "The state or region."),
    string("postalCode", "The zip or postal code."),
    string("country", "The country name."),
    string("type", "A label indicating the address's function."),
    attr("primary", AttrType::Boolean, "The primary address."),
];

const MANAGER_SUBS: &[AttrDef] = &[
    string("value", "The id of the manager's User resource."),
    attr("$ref", AttrType::Reference, "The URI of the manager."),
    AttrDef {
        mutability: Mutability::ReadOnly,
        ..string("displayName", "The manager's displayName.")
    },
];

/// Common attributes every resource has (RFC 7643 §3.1); not part of a schema's list.
pub static COMMON: &[AttrDef] = &[
    AttrDef {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        ..string("id", "Identifier assigned by the service provider.")
    },
    AttrDef {
        case_exact: true,
        ..string(
            "externalId",
            "Identifier assigned by the provisioning client.",
        )
    },
    AttrDef {
        mutability: Mutability::ReadOnly,
        ..complex(
            "meta",
            false,
            &[
                AttrDef {
                    case_exact: true,
                    ..string("resourceType", "The resource type.")
                },
                attr(
                    "created",
                    AttrType::DateTime,
                    "When the resource was added.",
                ),
                attr(
                    "lastModified",
                    AttrType::DateTime,
                    "When the resource was last changed.",
                ),
                AttrDef {
                    case_exact: true,
                    ..attr("location", AttrType::Reference, "The resource's URI.")
                },
                AttrDef {
                    case_exact: true,
                    ..string("version", "The resource's version (ETag).")
                },
            ],
            "Resource metadata.",
        )
    },
];

/// The core User schema (RFC 7643 §4.1), without `password` and `groups`, which a gateway in front
/// of a user service cannot round-trip.
pub static USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &[
        AttrDef {
            required: true,
            ..string(
                "userName",
                "Unique identifier for the User, used to sign in.",
            )
        },
        complex(
            "name",
            false,
            NAME_SUBS,
            "The components of the user's name.",
        ),
        string("displayName", "The name of the User, suitable for display."),
        string("nickName", "The casual way to address the user."),
        attr(
            "profileUrl",
            AttrType::Reference,
            "A URI of the user's profile.",
        ),
        string("title", "The user's title."),
        string(
            "userType",
            "The relationship between organisation and user.",
        ),
        string(
            "preferredLanguage",
            "The user's preferred written language.",
        ),
        string("locale", "The user's default location."),
        string("timezone", "The user's time zone (Olson name)."),
        attr(
            "active",
            AttrType::Boolean,
            "The user's administrative status.",
        ),
        complex("emails", true, MULTI_SUBS, "Email addresses for the user."),
        complex(
            "phoneNumbers",
            true,
            MULTI_SUBS,
            "Phone numbers for the user.",
        ),
        complex("ims", true, MULTI_SUBS, "Instant messaging addresses."),
        complex("photos", true, MULTI_SUBS, "URLs of photos of the user."),
        complex(
            "addresses",
            true,
            ADDRESS_SUBS,
            "Physical mailing addresses.",
        ),
        complex(
            "entitlements",
            true,
            MULTI_SUBS,
            "Entitlements of the user.",
        ),
        complex("roles", true, MULTI_SUBS, "Roles of the user."),
        complex(
            "x509Certificates",
            true,
            MULTI_SUBS,
            "X.509 certificates of the user.",
        ),
    ],
};

/// The enterprise User extension (RFC 7643 §4.3).
pub static ENTERPRISE: SchemaDef = SchemaDef {
    id: ENTERPRISE_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        string("employeeNumber", "Numeric or alphanumeric employee id."),
        string("costCenter", "Name of a cost center."),
        string("organization", "Name of an organization."),
        string("division", "Name of a division."),
        string("department", "Name of a department."),
        complex("manager", false, MANAGER_SUBS, "The user's manager."),
    ],
};

const MEMBER_SUBS: &[AttrDef] = &[
    AttrDef {
        case_exact: true,
        mutability: Mutability::Immutable,
        ..string("value", "The id of the member's User resource.")
    },
    AttrDef {
        case_exact: true,
        mutability: Mutability::Immutable,
        ..attr(
            "$ref",
            AttrType::Reference,
            "The URI of the member's resource.",
        )
    },
    AttrDef {
        mutability: Mutability::ReadOnly,
        returned: Returned::Request,
        ..string(
            "display",
            "The member's display name, returned when asked for by name.",
        )
    },
    AttrDef {
        mutability: Mutability::Immutable,
        canonical_values: &["User"],
        ..string(
            "type",
            "The member's resource type (only \"User\" is provisioned).",
        )
    },
];

/// The core Group schema (RFC 7643 §4.2). `displayName` is required: it names the group in the
/// backend, and Entra and Okta match groups by it.
pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &[
        AttrDef {
            required: true,
            ..string("displayName", "A human-readable name for the group.")
        },
        complex("members", true, MEMBER_SUBS, "The members of the group."),
    ],
};

/// The resource types the gateway serves, which decide where attribute names resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `/Users`: the User schema and its enterprise extension.
    User,
    /// `/Groups`: the Group schema.
    Group,
}

/// Resolves `name` (with optional `sub`) against the Group schema and the common attributes;
/// `schema`, when given, must be the Group URN.
pub fn resolve_group(schema: Option<&str>, name: &str, sub: Option<&str>) -> Option<Resolved> {
    if schema.is_some_and(|urn| !urn.eq_ignore_ascii_case(GROUP_SCHEMA)) {
        return None;
    }
    let attr = GROUP.attr(name).or_else(|| common(name))?;
    let sub = match sub {
        Some(s) => Some(attr.sub(s)?),
        None => None,
    };
    Some(Resolved {
        home: Home::Core,
        attr,
        sub,
    })
}

/// Resolves `name` (with optional `sub`) against the schemas of `kind`.
pub fn resolve_for(
    kind: ResourceKind,
    schema: Option<&str>,
    name: &str,
    sub: Option<&str>,
) -> Option<Resolved> {
    match kind {
        ResourceKind::User => resolve(schema, name, sub),
        ResourceKind::Group => resolve_group(schema, name, sub),
    }
}

/// The attributes of `kind` returned only when asked for by name (`returned: "request"`).
pub fn returned_on_request(kind: ResourceKind) -> Vec<Resolved> {
    let schemas: &[(Home, &'static SchemaDef)] = match kind {
        ResourceKind::User => &[(Home::Core, &USER), (Home::Enterprise, &ENTERPRISE)],
        ResourceKind::Group => &[(Home::Core, &GROUP)],
    };
    let mut out = Vec::new();
    for &(home, schema) in schemas {
        for attr in schema.attributes {
            if attr.returned == Returned::Request {
                out.push(Resolved {
                    home,
                    attr,
                    sub: None,
                });
            }
            let subs = attr.sub_attributes.iter();
            out.extend(
                subs.filter(|s| s.returned == Returned::Request)
                    .map(|sub| Resolved {
                        home,
                        attr,
                        sub: Some(sub),
                    }),
            );
        }
    }
    out
}

/// Where an attribute lives in a resource's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// At the top level of the resource (core and common attributes).
    Core,
    /// Inside the object keyed by the enterprise extension URN.
    Enterprise,
}

/// A resolved attribute reference: where it lives, its definition and an optional sub-attribute.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// Which object of the resource holds it.
    pub home: Home,
    /// The top-level attribute.
    pub attr: &'static AttrDef,
    /// The sub-attribute, when the reference names one.
    pub sub: Option<&'static AttrDef>,
}

impl Resolved {
    /// The canonical dotted path, URN-qualified for extension attributes (`name.givenName`,
    /// `urn:...:enterprise:2.0:User:manager.value`).
    pub fn canonical(&self) -> String {
        let mut s = match self.home {
            Home::Core => String::new(),
            Home::Enterprise => format!("{ENTERPRISE_SCHEMA}:"),
        };
        s.push_str(self.attr.name);
        if let Some(sub) = self.sub {
            s.push('.');
            s.push_str(sub.name);
        }
        s
    }

    /// The definition of the referenced leaf (the sub-attribute when there is one).
    pub fn leaf(&self) -> &'static AttrDef {
        self.sub.unwrap_or(self.attr)
    }
}

/// Normalises a schema URN: case-insensitive, and the misspelt enterprise URN accepted.
pub fn canonical_schema(urn: &str) -> Option<&'static str> {
    if urn.eq_ignore_ascii_case(USER_SCHEMA) {
        Some(USER_SCHEMA)
    } else if urn.eq_ignore_ascii_case(ENTERPRISE_SCHEMA)
        || urn.eq_ignore_ascii_case(ENTERPRISE_SCHEMA_MISSPELT)
    {
        Some(ENTERPRISE_SCHEMA)
    } else {
        None
    }
}

/// Splits a possibly URN-qualified path (`urn:...:User:name.givenName`) into its schema URN and
/// the remaining `attr[.sub]` part. Attribute names never contain `:`, so the URN is everything
/// up to the last one (the URN itself has dots, as in `2.0`).
pub fn split_urn(path: &str) -> (Option<&str>, &str) {
    if !path
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        return (None, path);
    }
    match path.rfind(':') {
        Some(i) => (Some(&path[..i]), &path[i + 1..]),
        None => (None, path),
    }
}

/// The extension schemas of a User and where their attributes live.
static EXTENSIONS: [(Home, &SchemaDef); 1] = [(Home::Enterprise, &ENTERPRISE)];

/// Resolves `name` (with optional `sub`) against the User schemas. `schema` is the URN prefix if
/// the client gave one. A name without URN is a core attribute, or else the extension attribute of
/// that name when exactly one extension defines it (some Entra tenants send `department` or
/// `manager` unqualified). Unknown and ambiguous names give `None`.
pub fn resolve(schema: Option<&str>, name: &str, sub: Option<&str>) -> Option<Resolved> {
    let (home, attr) = match schema {
        Some(urn) => match canonical_schema(urn)? {
            USER_SCHEMA => (Home::Core, USER.attr(name).or_else(|| common(name))?),
            _ => (Home::Enterprise, ENTERPRISE.attr(name)?),
        },
        None => match USER.attr(name).or_else(|| common(name)) {
            Some(attr) => (Home::Core, attr),
            None => only_extension_attr(&EXTENSIONS, name)?,
        },
    };
    let sub = match sub {
        Some(s) => Some(attr.sub(s)?),
        None => None,
    };
    Some(Resolved { home, attr, sub })
}

/// Resolves a dotted, possibly URN-qualified path such as `name.givenName` or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`.
pub fn resolve_path(path: &str) -> Option<Resolved> {
    resolve_path_for(ResourceKind::User, path)
}

/// Resolves a dotted, possibly URN-qualified path against the schemas of `kind`.
pub fn resolve_path_for(kind: ResourceKind, path: &str) -> Option<Resolved> {
    let (urn, rest) = split_urn(path);
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    resolve_for(kind, urn, name, sub)
}

/// The attribute called `name` in `extensions` when exactly one of them defines it.
fn only_extension_attr(
    extensions: &[(Home, &'static SchemaDef)],
    name: &str,
) -> Option<(Home, &'static AttrDef)> {
    let mut found = extensions
        .iter()
        .filter_map(|(home, schema)| schema.attr(name).map(|attr| (*home, attr)));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

fn common(name: &str) -> Option<&'static AttrDef> {
    COMMON.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_case_insensitively() {
        let r = resolve_path("NAME.givenname").unwrap();
        assert_eq!(r.canonical(), "name.givenName");
        assert_eq!(r.home, Home::Core);
    }

    #[test]
    fn resolves_urn_qualified_core_and_extension() {
        let r = resolve_path("urn:ietf:params:scim:schemas:core:2.0:User:userName").unwrap();
        assert_eq!(r.canonical(), "userName");
        let r = resolve_path(&format!("{ENTERPRISE_SCHEMA}:manager.value")).unwrap();
        assert_eq!(r.home, Home::Enterprise);
        assert_eq!(r.canonical(), format!("{ENTERPRISE_SCHEMA}:manager.value"));
    }

    #[test]
    fn accepts_misspelt_enterprise_urn() {
        let r = resolve_path(&format!("{ENTERPRISE_SCHEMA_MISSPELT}:department")).unwrap();
        assert_eq!(r.home, Home::Enterprise);
    }

    #[test]
    fn common_attributes_are_case_exact() {
        assert!(resolve_path("externalid").unwrap().leaf().case_exact);
        assert!(!resolve_path("userName").unwrap().leaf().case_exact);
    }

    #[test]
    fn unqualified_extension_names_resolve_when_unambiguous() {
        for (path, canonical) in [
            ("department", "department"),
            ("EMPLOYEENUMBER", "employeeNumber"),
            ("manager", "manager"),
            ("manager.value", "manager.value"),
        ] {
            let r = resolve_path(path).unwrap();
            assert_eq!(r.home, Home::Enterprise, "{path}");
            assert_eq!(r.canonical(), format!("{ENTERPRISE_SCHEMA}:{canonical}"));
        }
        assert_eq!(resolve_path("displayName").unwrap().home, Home::Core);
        static OTHER: SchemaDef = SchemaDef {
            id: "urn:example:other",
            name: "Other",
            description: "",
            attributes: &[string("department", "")],
        };
        let both = [(Home::Enterprise, &ENTERPRISE), (Home::Core, &OTHER)];
        assert!(only_extension_attr(&both, "department").is_none());
        assert!(only_extension_attr(&both, "costCenter").is_some());
    }

    #[test]
    fn unknown_names_do_not_resolve() {
        assert!(resolve_path("nosuch").is_none());
        assert!(resolve_path("name.nosuch").is_none());
        assert!(resolve_path("urn:example:other:thing").is_none());
    }
}
