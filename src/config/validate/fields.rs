//! Validation of `[[users.fields]]`: the SCIM side (one attribute, one pinned element, or a whole
//! multi-valued attribute stored as a native list with its `[[users.fields.elements]]`), value
//! maps (booleans or words, with `otherwise`), normalisers, native types, composed templates and
//! when a field is written. Every mistake is reported at its position.

use super::validator::{dotted, toml_to_json, Validator};
use crate::backend::spec::{
    Convert, FieldMap, ListMap, NativeType, Normalize, Otherwise, Piece, ScimTarget, SubMap,
    Transform, WriteOn,
};
use crate::config::file::FieldFile;
use crate::scim::filter;
use crate::scim::schema::{self, AttrDef, AttrType, Mutability, Resolved, ResourceKind};
use serde_json::Value;
use serde_spanned::Spanned;
use std::collections::BTreeMap;

impl Validator<'_> {
    pub(super) fn field(&mut self, f: &FieldFile) -> Option<FieldMap> {
        let scim = match &f.scim {
            Some(s) => Some(self.scim_target(s)?),
            None => None,
        };
        let constant = f.constant.as_ref().map(toml_to_json);
        let compose = f.compose.as_ref().and_then(|c| self.compose(c));
        let sides = [scim.is_some(), constant.is_some(), f.compose.is_some()];
        match sides.iter().filter(|s| **s).count() {
            0 => self.at(
                &f.native,
                "a field needs `scim` (a SCIM attribute), `compose` (a template) or `constant`"
                    .into(),
            ),
            1 => {}
            _ => self.at(
                &f.native,
                "a field has one of `scim`, `compose` or `constant`, not several".into(),
            ),
        }
        let list_target = scim.as_ref().filter(|t| is_list(t));
        let list = match list_target {
            Some(t) => Some(self.list_map(f, t)?),
            None => {
                self.no_list_keys(f);
                None
            }
        };
        let leaf = scim.as_ref().map(|t| match &list {
            Some(_) => t.attr.attr.sub("value").unwrap_or(t.attr.attr),
            None => t.attr.leaf(),
        });
        let convert = self.convert(f, leaf)?;
        if list.is_some() && f.default.is_some() {
            self.at(&f.native, "a native list takes no `default`".into());
        }
        Some(FieldMap {
            scim,
            native: dotted(f.native.get_ref()),
            convert,
            constant,
            compose: if f.compose.is_some() {
                Some(compose?)
            } else {
                None
            },
            list,
            default: f.default.as_ref().map(toml_to_json),
            on: self.write_on(f),
        })
    }

    fn write_on(&mut self, f: &FieldFile) -> WriteOn {
        match f.on.as_ref().map(|o| (o, o.get_ref().as_str())) {
            None | Some((_, "always")) => WriteOn::Always,
            Some((_, "create")) => WriteOn::Create,
            Some((_, "never")) => WriteOn::Never,
            Some((o, other)) => {
                self.at(
                    o,
                    format!("on = {other:?}: expected \"always\", \"create\" or \"never\""),
                );
                WriteOn::Always
            }
        }
    }

    fn scim_target(&mut self, s: &Spanned<String>) -> Option<ScimTarget> {
        match parse_scim_target_for(self.kind, s.get_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.at(s, e.to_string());
                None
            }
        }
    }

    /// `native_type`, `map`, `otherwise` and `normalize` of a field or list element whose SCIM
    /// side is `leaf` (none for constants and templates).
    fn convert(&mut self, f: &FieldFile, leaf: Option<&AttrDef>) -> Option<Convert> {
        let native_type = match f.native_type.as_ref().map(|t| (t, t.get_ref().as_str())) {
            None => NativeType::Any,
            Some((_, "string")) => NativeType::String,
            Some((_, "integer")) => NativeType::Integer,
            Some((_, "boolean")) => NativeType::Boolean,
            Some((t, other)) => {
                self.at(
                    t,
                    format!("native_type {other:?} is not string, integer or boolean"),
                );
                NativeType::Any
            }
        };
        let transform = match &f.map {
            Some(m) => self.value_map(m, f.otherwise.as_ref(), leaf)?,
            None => {
                if let Some(o) = &f.otherwise {
                    self.at(o, "`otherwise` needs a `map` of words".into());
                }
                Transform::Direct(native_type)
            }
        };
        let mut normalize = Vec::new();
        for n in &f.normalize {
            match n.get_ref().as_str() {
                "lowercase" => normalize.push(Normalize::Lowercase),
                "trim" => normalize.push(Normalize::Trim),
                other => self.at(
                    n,
                    format!("normalize {other:?} is not \"lowercase\" or \"trim\""),
                ),
            }
        }
        Some(Convert {
            transform,
            normalize,
        })
    }

    /// A `map`: native words to SCIM booleans, or native words to SCIM words (with `otherwise`).
    fn value_map(
        &mut self,
        m: &Spanned<BTreeMap<String, toml::Value>>,
        otherwise: Option<&Spanned<String>>,
        leaf: Option<&AttrDef>,
    ) -> Option<Transform> {
        let entries = m.get_ref();
        if entries.values().all(|v| v.is_bool()) {
            if let Some(o) = otherwise {
                self.at(
                    o,
                    "`otherwise` applies to maps of words, not of booleans".into(),
                );
            }
            return self.bool_enum(m);
        }
        let Some(words) = entries
            .iter()
            .map(|(n, s)| s.as_str().map(|s| (n.clone(), s.to_string())))
            .collect::<Option<Vec<_>>>()
        else {
            self.at(
                m,
                "map values must all be true/false (a boolean attribute) or all be SCIM words"
                    .into(),
            );
            return None;
        };
        if leaf.is_some_and(|l| !matches!(l.ty, AttrType::String | AttrType::Reference)) {
            self.at(
                m,
                "a map of words needs a string attribute (map a boolean with true/false)".into(),
            );
            return None;
        }
        for (i, (native, scim)) in words.iter().enumerate() {
            let clash = words[..i]
                .iter()
                .find(|(n, s)| n.eq_ignore_ascii_case(native) && s != scim);
            if let Some((other, _)) = clash {
                self.at(
                    m,
                    format!("map: {other:?} and {native:?} differ only in case but map to different words"),
                );
            }
        }
        let otherwise = match otherwise.map(|o| (o, o.get_ref().as_str())) {
            None | Some((_, "refuse")) => Otherwise::Refuse,
            Some((_, "keep")) => Otherwise::Keep,
            Some((o, word)) => {
                if !words.iter().any(|(n, _)| n == word) {
                    self.at(
                        o,
                        format!("otherwise {word:?} is not \"refuse\", \"keep\" or a native word of the map"),
                    );
                }
                Otherwise::Native(word.to_string())
            }
        };
        Some(Transform::Words {
            pairs: words,
            otherwise,
        })
    }

    fn bool_enum(&mut self, m: &Spanned<BTreeMap<String, toml::Value>>) -> Option<Transform> {
        let mut when_true = None;
        let mut when_false = None;
        let mut read = Vec::new();
        for (native, scim) in m.get_ref() {
            let Some(b) = scim.as_bool() else { continue };
            let nv = Value::String(native.clone());
            read.push((nv.clone(), b));
            let slot = if b { &mut when_true } else { &mut when_false };
            slot.get_or_insert(nv);
        }
        match (when_true, when_false) {
            (Some(t), Some(f)) => Some(Transform::BoolEnum {
                when_true: t,
                when_false: f,
                read,
            }),
            _ => {
                self.at(
                    m,
                    "map needs at least one native value for true and one for false".into(),
                );
                None
            }
        }
    }

    /// `compose = "{name.givenName} {name.familyName}"`: literal text and simple attributes.
    fn compose(&mut self, c: &Spanned<String>) -> Option<Vec<Piece>> {
        match parse_compose(self.kind, c.get_ref()) {
            Ok(p) => Some(p),
            Err(e) => {
                self.at(c, e);
                None
            }
        }
    }

    /// The native list shape of a field whose `scim` names a whole multi-valued attribute.
    fn list_map(&mut self, f: &FieldFile, target: &ScimTarget) -> Option<ListMap> {
        let attr = target.attr.attr;
        let primary_first = match f.primary.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None => false,
            Some((_, "first")) => true,
            Some((p, other)) => {
                self.at(p, format!("primary {other:?}: the only choice is \"first\" (map a native flag as an element with scim = \"primary\")"));
                false
            }
        };
        if f.elements.is_empty() && attr.sub("value").is_none() {
            self.at(
                &f.native,
                format!(
                    "{} has no `value`: map its sub-attributes with [[users.fields.elements]]",
                    attr.name
                ),
            );
            return None;
        }
        if !f.elements.is_empty()
            && (f.map.is_some() || !f.normalize.is_empty() || f.native_type.is_some())
        {
            self.at(
                &f.native,
                "a list of objects converts per element: put map, otherwise, normalize and native_type on its [[users.fields.elements]]".into(),
            );
        }
        let mut subs: Vec<SubMap> = Vec::new();
        for e in &f.elements {
            if let Some(sub) = self.sub_map(e, attr) {
                if subs.iter().any(|s| std::ptr::eq(s.sub, sub.sub)) {
                    self.at(
                        &e.native,
                        format!("{}.{} is mapped twice", attr.name, sub.sub.name),
                    );
                }
                subs.push(sub);
            }
        }
        Some(ListMap {
            subs,
            primary_first,
        })
    }

    /// One `[[users.fields.elements]]` entry: a sub-attribute of `attr` and its native key.
    fn sub_map(&mut self, e: &FieldFile, attr: &'static AttrDef) -> Option<SubMap> {
        let foreign = [
            ("constant", e.constant.is_some()),
            ("default", e.default.is_some()),
            ("on", e.on.is_some()),
            ("compose", e.compose.is_some()),
            ("primary", e.primary.is_some()),
            ("elements", !e.elements.is_empty()),
        ];
        let foreign: Vec<&str> = foreign
            .iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| *k)
            .collect();
        if !foreign.is_empty() {
            self.at(
                &e.native,
                format!(
                    "a list element takes scim, native, map, otherwise, normalize and native_type, not {}",
                    foreign.join(", ")
                ),
            );
        }
        let Some(name) = &e.scim else {
            self.at(
                &e.native,
                format!(
                    "a list element needs `scim`, a sub-attribute of {}",
                    attr.name
                ),
            );
            return None;
        };
        let Some(sub) = attr.sub(name.get_ref()) else {
            let known: Vec<&str> = attr.sub_attributes.iter().map(|s| s.name).collect();
            self.at(
                name,
                format!(
                    "{:?} is not a sub-attribute of {} ({})",
                    name.get_ref(),
                    attr.name,
                    known.join(", ")
                ),
            );
            return None;
        };
        let convert = self.convert(e, Some(sub))?;
        Some(SubMap {
            sub,
            native: dotted(e.native.get_ref()),
            convert,
        })
    }

    /// `elements` and `primary` belong to native lists only.
    fn no_list_keys(&mut self, f: &FieldFile) {
        let at = f
            .primary
            .as_ref()
            .map(|p| p.span().start)
            .or_else(|| f.elements.first().map(|e| e.native.span().start));
        if let Some(at) = at {
            self.report(at, "`elements` and `primary` need `scim` to name a whole multi-valued attribute (scim = \"emails\")".into());
        }
    }
}

/// True for a target that names a whole multi-valued attribute (a native list).
fn is_list(t: &ScimTarget) -> bool {
    t.attr.attr.multi_valued && t.attr.sub.is_none()
}

/// Why a mapping's SCIM side was refused (the message quotes it as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an attribute of the User schemas.
    #[error("{0:?} is not an attribute of the User schemas")]
    NotAttribute(String),
    /// A read-only attribute.
    #[error("{0:?} is read-only and cannot be mapped")]
    ReadOnly(String),
    /// A sub-attribute of a multi-valued attribute with no element pinned.
    #[error("{text:?}: pin one element, like emails[type eq \"work\"].value, or map the whole list with scim = {list:?}")]
    Unpinned {
        /// The target as written.
        text: String,
        /// The multi-valued attribute's name.
        list: String,
    },
    /// A complex attribute as a whole.
    #[error("{0:?} cannot be mapped: map its sub-attributes, like name.givenName")]
    Complex(String),
    /// `[` without `]`.
    #[error("{0:?}: missing ']'")]
    Unclosed(String),
    /// The attribute before `[` is unknown.
    #[error("{0:?}: unknown attribute")]
    UnknownAttribute(String),
    /// The element filter does not parse (the filter parser's detail).
    #[error("{0}")]
    Filter(String),
    /// An element filter other than `eq` terms joined by `and`.
    #[error("{0:?}: the filter must be `sub eq value` terms joined by `and`")]
    NotPinning(String),
    /// Text after `]` that is not `.subAttribute`.
    #[error("{0:?}: expected .subAttribute after ']'")]
    AfterBracket(String),
    /// An unknown sub-attribute after `]`.
    #[error("{text:?}: unknown sub-attribute {sub:?}")]
    UnknownSub {
        /// The target as written.
        text: String,
        /// The sub-attribute named.
        sub: String,
    },
}

/// Parses a mapping's SCIM side: `userName`, `name.givenName`, `urn:...:department`, an element
/// of a multi-valued attribute pinned by `eq` (`emails[type eq "work"].value`), or a whole
/// multi-valued attribute, all of it (`emails`) or the elements matching pins
/// (`emails[type eq "other"]`), stored as a native list.
pub fn parse_scim_target(text: &str) -> Result<ScimTarget, TargetError> {
    parse_scim_target_for(ResourceKind::User, text)
}

/// Parses a mapping's SCIM side over the schemas of `kind` (see [`parse_scim_target`]).
pub fn parse_scim_target_for(kind: ResourceKind, text: &str) -> Result<ScimTarget, TargetError> {
    let Some(open) = text.find('[') else {
        let attr = schema::resolve_path_for(kind, text)
            .ok_or_else(|| TargetError::NotAttribute(text.to_string()))?;
        if attr.attr.mutability == Mutability::ReadOnly {
            return Err(TargetError::ReadOnly(text.to_string()));
        }
        if attr.attr.multi_valued && attr.sub.is_some() {
            return Err(TargetError::Unpinned {
                text: text.to_string(),
                list: attr.attr.name.to_string(),
            });
        }
        if !attr.attr.multi_valued && attr.leaf().ty == AttrType::Complex {
            return Err(TargetError::Complex(text.to_string()));
        }
        return Ok(ScimTarget {
            attr,
            element: None,
        });
    };
    let close = text
        .rfind(']')
        .ok_or_else(|| TargetError::Unclosed(text.to_string()))?;
    let parent = schema::resolve_path_for(kind, &text[..open])
        .ok_or_else(|| TargetError::UnknownAttribute(text.to_string()))?;
    let inner = filter::parse_element_filter(parent.attr, parent.home, &text[open + 1..close])
        .map_err(|e| TargetError::Filter(e.detail))?;
    let element =
        filter::eq_constraints(&inner).ok_or_else(|| TargetError::NotPinning(text.to_string()))?;
    let rest = &text[close + 1..];
    let sub = if rest.is_empty() {
        None
    } else {
        let sub_name = rest
            .strip_prefix('.')
            .ok_or_else(|| TargetError::AfterBracket(text.to_string()))?;
        Some(
            parent
                .attr
                .sub(sub_name)
                .ok_or_else(|| TargetError::UnknownSub {
                    text: text.to_string(),
                    sub: sub_name.to_string(),
                })?,
        )
    };
    Ok(ScimTarget {
        attr: Resolved {
            home: parent.home,
            attr: parent.attr,
            sub,
        },
        element: Some(element),
    })
}

/// Parses a composed field's template: text with `{attribute}` placeholders naming simple SCIM
/// attributes (`{name.givenName}`, `{emails[type eq "work"].value}`).
fn parse_compose(kind: ResourceKind, text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Literal(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("compose {text:?}: unclosed '{{'"))?;
        let name = &rest[open + 1..open + close];
        let target =
            parse_scim_target_for(kind, name).map_err(|e| format!("compose {text:?}: {e}"))?;
        if is_list(&target) {
            return Err(format!(
                "compose {text:?}: {{{name}}} is a list; pin one element's sub-attribute"
            ));
        }
        pieces.push(Piece::Attr(target));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_string()));
    }
    if !pieces.iter().any(|p| matches!(p, Piece::Attr(_))) {
        return Err(format!(
            "compose {text:?} names no attribute: write them in braces, like \"{{name.givenName}} {{name.familyName}}\""
        ));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use crate::config::from_str;
    use std::path::Path;

    /// The demo config with `fields` as its only mappings; the problems as `line: message`.
    fn problems(fields: &str) -> Vec<String> {
        let demo = include_str!("../../../conf/demo.toml");
        let head = &demo[..demo.find("[[users.fields]]").unwrap()];
        let text = format!("{head}{fields}");
        let offset = head.lines().count();
        from_str(&text, Path::new("t.toml"))
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| format!("{}:{}: {}", p.line - offset, p.column, p.message))
            .collect()
    }

    #[test]
    fn each_new_option_mistake_is_reported_at_its_position() {
        let fields = r#"[[users.fields]]
scim = "userType"
native = "kind"
map = { EMP = "Employee", emp = "Staff" }
otherwise = "INTERN"
normalize = ["upper"]
[[users.fields]]
scim = "active"
native = "on"
map = { yes = true, no = false }
otherwise = "keep"
[[users.fields]]
scim = "emails"
native = "mails"
primary = "last"
  [[users.fields.elements]]
  scim = "colour"
  native = "c"
  [[users.fields.elements]]
  scim = "value"
  native = "v"
  default = "x"
[[users.fields]]
compose = "{name.givenName} {name}"
native = "full"
[[users.fields]]
compose = "Mr X"
native = "full2"
[[users.fields]]
scim = "title"
native = "t"
elements = [{ scim = "value", native = "v" }]
[[users.fields]]
scim = "addresses"
native = "addr"
[[users.fields]]
scim = "userName"
compose = "{userName}"
native = "u"
"#;
        let got = problems(fields);
        let want = [
            "4:7: map: \"EMP\" and \"emp\" differ only in case but map to different words",
            "5:13: otherwise \"INTERN\" is not \"refuse\", \"keep\" or a native word of the map",
            "6:14: normalize \"upper\" is not \"lowercase\" or \"trim\"",
            "11:13: `otherwise` applies to maps of words, not of booleans",
            "15:11: primary \"last\": the only choice is \"first\"",
            "17:10: \"colour\" is not a sub-attribute of emails",
            "21:12: a list element takes scim, native, map, otherwise, normalize and native_type, not default",
            "24:11: compose \"{name.givenName} {name}\": \"name\" cannot be mapped",
            "27:11: compose \"Mr X\" names no attribute",
            "32:40: `elements` and `primary` need `scim` to name a whole multi-valued attribute",
            "35:10: addresses has no `value`: map its sub-attributes with [[users.fields.elements]]",
            "39:10: a field has one of `scim`, `compose` or `constant`, not several",
        ];
        for w in want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }
}
