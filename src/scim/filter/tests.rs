//! Tests of the filter module: parser tables (valid and invalid), limits, evaluation against an
//! Entra-shaped user, element filters, `eq_constraints`, and property tests.

use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{self, ENTERPRISE_SCHEMA};
use proptest::prelude::*;
use serde_json::json;

const ENT: &str = ENTERPRISE_SCHEMA;
const CORE: &str = schema::USER_SCHEMA;
const MANAGER_ID: &str = "26118915-6090-4610-87e4-49d8ca9f808d";

/// The canonical text of `input`'s parse, panicking with the error when it does not parse.
fn parsed(input: &str) -> String {
    match parse(input) {
        Ok(f) => f.to_string(),
        Err(e) => panic!("{input:?} should parse but failed: {e}"),
    }
}

/// The error `input` gives, panicking when it parses.
fn rejected(input: &str) -> ScimError {
    match parse(input) {
        Ok(f) => panic!("{input:?} should fail but parsed as {f}"),
        Err(e) => e,
    }
}

fn assert_invalid_filter(e: &ScimError) {
    assert_eq!(e.status, 400, "{e}");
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{e}");
}

fn emails_def() -> &'static AttrDef {
    schema::USER
        .attr("emails")
        .expect("emails is in the schema")
}

/// A user as the gateway stores it after an Entra create, with a few awkward values.
fn entra_user() -> Value {
    json!({
        "schemas": [CORE, ENT],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Alice@Contoso.com",
        "active": true,
        "displayName": "Alice Smith",
        "title": "",
        "emails": [
            {"primary": true, "type": "work", "value": "alice@contoso.com"},
            {"primary": false, "type": "home", "value": "alice@example.org"}
        ],
        "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
        "name": {"formatted": "Alice Smith", "familyName": "Smith", "givenName": "Alice"},
        "roles": [],
        "addresses": null,
        "meta": {
            "resourceType": "User",
            "created": "2024-03-01T10:00:00Z",
            "lastModified": "2024-03-05T08:30:00.5+01:00",
            "location": "https://gw.example.com/scim/v2/Users/2819c223-7f76-453a-919d-413861904646",
            "version": "W/\"3\""
        },
        ENT: {
            "department": "Sales",
            "employeeNumber": "701984",
            "manager": {"value": MANAGER_ID}
        }
    })
}

/// A sparse second user, for the round-trip property.
fn other_user() -> Value {
    json!({
        "id": "b1",
        "userName": "bob",
        "active": "False",
        "emails": [{"type": "Work", "value": "BOB@contoso.com", "primary": "true"}],
        "meta": {"created": "2023-12-31T23:59:59Z"}
    })
}

fn eval(input: &str, resource: &Value) -> bool {
    match parse(input) {
        Ok(f) => matches(&f, resource),
        Err(e) => panic!("{input:?} should parse but failed: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Parser: valid input

#[test]
fn parses_valid_filters_to_canonical_text() {
    let cases: Vec<(String, String)> = [
        // Every operator.
        (r#"userName eq "bjensen""#, r#"userName eq "bjensen""#),
        (r#"userName ne "bjensen""#, r#"userName ne "bjensen""#),
        (r#"userName co "jen""#, r#"userName co "jen""#),
        (r#"userName sw "bj""#, r#"userName sw "bj""#),
        (r#"userName ew "sen""#, r#"userName ew "sen""#),
        (r#"userName gt "a""#, r#"userName gt "a""#),
        (r#"userName ge "a""#, r#"userName ge "a""#),
        (r#"userName lt "z""#, r#"userName lt "z""#),
        (r#"userName le "z""#, r#"userName le "z""#),
        ("title pr", "title pr"),
        // Case of names, operators and keywords.
        (r#"USERNAME EQ "x""#, r#"userName eq "x""#),
        (r#"userName Eq "x""#, r#"userName eq "x""#),
        ("Title PR", "title pr"),
        ("active eq TRUE", "active eq true"),
        ("active Eq False", "active eq false"),
        ("userName eq NULL", "userName eq null"),
        (
            r#"title pr AND userName eq "a" OR nickName pr"#,
            r#"title pr and userName eq "a" or nickName pr"#,
        ),
        ("NOT (title pr)", "not (title pr)"),
        ("not(title pr)", "not (title pr)"),
        // Precedence and grouping.
        (
            r#"userName eq "a" and displayName eq "b" or title pr"#,
            r#"userName eq "a" and displayName eq "b" or title pr"#,
        ),
        (
            r#"title pr or userName eq "a" and displayName eq "b""#,
            r#"title pr or userName eq "a" and displayName eq "b""#,
        ),
        (
            r#"(title pr or userName eq "a") and displayName eq "b""#,
            r#"(title pr or userName eq "a") and displayName eq "b""#,
        ),
        (
            r#"title pr and (userName eq "a" and displayName eq "b")"#,
            r#"title pr and (userName eq "a" and displayName eq "b")"#,
        ),
        (
            r#"title pr or (userName eq "a" or displayName eq "b")"#,
            r#"title pr or (userName eq "a" or displayName eq "b")"#,
        ),
        (
            r#"(title pr and userName eq "a") or displayName eq "b""#,
            r#"title pr and userName eq "a" or displayName eq "b""#,
        ),
        (
            r#"not (title pr) and userName eq "a""#,
            r#"not (title pr) and userName eq "a""#,
        ),
        (
            r#"not (title pr or nickName pr)"#,
            r#"not (title pr or nickName pr)"#,
        ),
        (r#"((userName eq "a"))"#, r#"userName eq "a""#),
        (
            r#"title pr or nickName pr or locale pr"#,
            r#"title pr or nickName pr or locale pr"#,
        ),
        // URN-qualified names.
        (&format!(r#"{CORE}:userName eq "x""#), r#"userName eq "x""#),
        (
            &format!(r#"{CORE}:name.givenName eq "x""#),
            r#"name.givenName eq "x""#,
        ),
        (
            &format!(r#"{}:userName eq "x""#, CORE.to_uppercase()),
            r#"userName eq "x""#,
        ),
        (
            &format!(r#"{ENT}:department eq "Sales""#),
            &format!(r#"{ENT}:department eq "Sales""#),
        ),
        (
            &format!(r#"{ENT}:manager.value eq "m""#),
            &format!(r#"{ENT}:manager.value eq "m""#),
        ),
        (
            &format!("{}:EMPLOYEENUMBER pr", ENT.to_uppercase()),
            &format!("{ENT}:employeeNumber pr"),
        ),
        (
            &format!("{ENT}:manager.$ref pr"),
            &format!("{ENT}:manager.$ref pr"),
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0User:department eq "x""#,
            &format!(r#"{ENT}:department eq "x""#),
        ),
        // Sub-attributes, value paths and Entra's form.
        (r#"name.givenName eq "x""#, r#"name.givenName eq "x""#),
        (
            r#"meta.resourceType eq "User""#,
            r#"meta.resourceType eq "User""#,
        ),
        (r#"emails.value eq "x""#, r#"emails.value eq "x""#),
        (r#"emails eq "x""#, r#"emails.value eq "x""#),
        (r#"emails co "x""#, r#"emails.value co "x""#),
        (
            &format!(r#"{ENT}:manager eq "m""#),
            &format!(r#"{ENT}:manager.value eq "m""#),
        ),
        (r#"emails[type eq "work"]"#, r#"emails[type eq "work"]"#),
        (
            r#"emails[TYPE eq "work"].VALUE eq "a@b.c""#,
            r#"emails[type eq "work" and value eq "a@b.c"]"#,
        ),
        (
            r#"emails[type eq "work"].value pr"#,
            r#"emails[type eq "work" and value pr]"#,
        ),
        (
            r#"emails[type eq "work" or type eq "home"].value eq "x""#,
            r#"emails[(type eq "work" or type eq "home") and value eq "x"]"#,
        ),
        (
            r#"emails[type eq "work" and value co "@contoso.com"]"#,
            r#"emails[type eq "work" and value co "@contoso.com"]"#,
        ),
        (
            r#"emails[not (primary eq true)]"#,
            r#"emails[not (primary eq true)]"#,
        ),
        (
            r#"emails[type eq "work"] and userName pr"#,
            r#"emails[type eq "work"] and userName pr"#,
        ),
        (
            &format!(r#"{CORE}:emails[type eq "work"].value eq "x""#),
            r#"emails[type eq "work" and value eq "x"]"#,
        ),
        (
            r#"name[givenName eq "Alice"]"#,
            r#"name[givenName eq "Alice"]"#,
        ),
        (
            r#"not (emails[type eq "work"])"#,
            r#"not (emails[type eq "work"])"#,
        ),
        // Null on complex attributes, booleans, numbers, dates.
        ("emails eq null", "emails eq null"),
        ("name ne null", "name ne null"),
        (r#"active ne "True""#, r#"active ne "True""#),
        (
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        ),
        ("externalId eq 12", "externalId eq 12"),
        ("userName gt -1.5", "userName gt -1.5"),
        ("userName le 1e3", "userName le 1000.0"),
        // Whitespace and string escapes.
        ("  userName   eq    \"x\"  ", r#"userName eq "x""#),
        ("userName\teq\t\"x\"", r#"userName eq "x""#),
        (r#"userName eq"x""#, r#"userName eq "x""#),
        (r#"( userName eq "x" )"#, r#"userName eq "x""#),
        (
            r#"userName eq "a\"b\\c\u00e9\/""#,
            r#"userName eq "a\"b\\cé/""#,
        ),
        (
            r#"userName eq "a b  and or (not) [x]""#,
            r#"userName eq "a b  and or (not) [x]""#,
        ),
        (r#"userName eq """#, r#"userName eq """#),
    ]
    .iter()
    .map(|(i, o)| (i.to_string(), o.to_string()))
    .collect();
    for (input, want) in cases {
        assert_eq!(parsed(&input), want, "input {input:?}");
        // Canonical text is a fixed point.
        assert_eq!(parsed(&want), want, "canonical {want:?}");
    }
}

#[test]
fn parse_builds_expected_tree() {
    let f = parse(r#"userName eq "a" or title pr and not (nickName pr)"#).expect("parses");
    let Filter::Or(left, right) = f else {
        panic!("or at the root")
    };
    assert!(matches!(*left, Filter::Compare(_, CompareOp::Eq, Literal::String(ref s)) if s == "a"));
    let Filter::And(a, b) = *right else {
        panic!("and under or")
    };
    assert!(matches!(*a, Filter::Present(p) if p.attr.name == "title"));
    assert!(matches!(*b, Filter::Not(_)));
}

#[test]
fn entra_value_path_desugars_to_element_with_conjunction() {
    let f = parse(r#"emails[type eq "work"].value eq "a@b.c""#).expect("parses");
    let Filter::Element(path, inner) = f else {
        panic!("element at the root")
    };
    assert_eq!(path.attr.name, "emails");
    assert!(path.sub.is_none());
    let Filter::And(a, b) = *inner else {
        panic!("and inside")
    };
    for (part, sub, value) in [(a, "type", "work"), (b, "value", "a@b.c")] {
        match *part {
            Filter::Compare(p, CompareOp::Eq, Literal::String(s)) => {
                assert_eq!(p.attr.name, "emails");
                assert_eq!(p.sub.map(|s| s.name), Some(sub));
                assert_eq!(s, value);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn literals_parse_to_their_types() {
    let literal = |input: &str| match parse(input) {
        Ok(Filter::Compare(_, _, l)) => l,
        other => panic!("{input:?}: {other:?}"),
    };
    assert_eq!(literal("active eq TRUE"), Literal::Bool(true));
    assert_eq!(literal("active eq false"), Literal::Bool(false));
    assert_eq!(literal("userName eq Null"), Literal::Null);
    assert_eq!(literal("userName eq 42"), Literal::Number(42.into()));
    assert_eq!(
        literal(r#"userName eq "\u0041\n""#),
        Literal::String("A\n".into())
    );
    assert_eq!(
        literal(r#"userName eq "true""#),
        Literal::String("true".into())
    );
}

// ---------------------------------------------------------------------------------------------
// Parser: invalid input

#[test]
fn rejects_invalid_filters_with_invalid_filter() {
    let cases: Vec<(String, &str)> = [
        ("", "empty filter"),
        ("   \t ", "empty filter"),
        ("userName", "expected an operator after 'userName'"),
        ("userName eq", "expected a value after 'eq'"),
        ("userName eq )", "expected a value after 'eq'"),
        ("userName eq bareword", "expected a value after 'eq'"),
        ("userName eq 01", "expected a value"),
        ("userName eq 1e999", "expected a value"),
        ("userName eq +1", "expected a value"),
        (r#"userName eq "x"#, "unterminated string"),
        (r#"userName eq "x\""#, "unterminated string"),
        (r#"userName eq "\x""#, "invalid string literal"),
        ("userName eq \"a\u{1}\"", "invalid string literal"),
        (r#"userName eq "x" garbage"#, "unexpected 'garbage'"),
        (r#"userName eq "x")"#, "unexpected ')'"),
        (r#"userName eq "a" "b""#, "unexpected string"),
        (r#"(userName eq "x""#, "missing ')'"),
        (
            r#"userName eq "x" and"#,
            "ends where an expression was expected",
        ),
        (r#"and userName eq "x""#, "missing expression before 'and'"),
        (
            r#"title pr or or title pr"#,
            "missing expression before 'or'",
        ),
        ("title pr pr", "unexpected 'pr'"),
        ("()", "expected an expression at offset 1, found ')'"),
        ("(", "ends where an expression was expected"),
        (r#""x" eq userName"#, "expected an expression"),
        (r#"userName "x""#, "expected an operator after 'userName'"),
        (r#"userName xx "x""#, "unknown operator 'xx'"),
        (r#"userName equals "x""#, "unknown operator 'equals'"),
        (r#"nosuch eq "x""#, "unknown attribute 'nosuch'"),
        ("name.nosuch pr", "unknown attribute 'name.nosuch'"),
        ("name.givenName.x pr", "unknown attribute"),
        ("password pr", "unknown attribute 'password'"),
        (r#"urn:example:foo:userName eq "x""#, "unknown attribute"),
        (&format!("{ENT}:userName pr"), "unknown attribute"),
        (&format!("{CORE}:department pr"), "unknown attribute"),
        (".value pr", "unknown attribute"),
        // Operators that cannot apply.
        (
            "active gt true",
            "cannot compare the boolean attribute 'active'",
        ),
        (r#"active le "x""#, "cannot compare the boolean attribute"),
        ("userName gt true", "'gt' needs a string or number value"),
        ("userName lt null", "'lt' needs a string or number value"),
        (
            r#"emails gt "x""#,
            "cannot compare the complex attribute 'emails'",
        ),
        (
            r#"name eq "x""#,
            "complex attribute 'name' cannot be compared",
        ),
        (
            r#"name ge "x""#,
            "cannot compare the complex attribute 'name'",
        ),
        ("name co null", "cannot be compared"),
        ("userName co 1", "'co' needs a string value"),
        ("userName sw true", "'sw' needs a string value"),
        ("userName ew null", "'ew' needs a string value"),
        (r#"active co "t""#, "cannot compare the boolean attribute"),
        // not needs parentheses.
        (r#"not userName eq "x""#, "expected '(' after 'not'"),
        ("not", "missing '(' after 'not' at end of filter"),
        (r#"not (userName eq "x""#, "missing ')'"),
        // Value paths.
        (r#"emails[type eq "work""#, "missing ']'"),
        (r#"emails[type eq "work")"#, "expected ']'"),
        (r#"emails[type eq "work"]]"#, "unexpected ']'"),
        (r#"emails[]"#, "expected an expression"),
        (r#"emails[value[type eq "x"]]"#, "nested '['"),
        (
            r#"emails[emails[type eq "x"]]"#,
            "unknown sub-attribute 'emails' of 'emails'",
        ),
        (r#"emails[emails.type eq "x"]"#, "unknown sub-attribute"),
        (
            r#"emails[nosuch eq "x"]"#,
            "unknown sub-attribute 'nosuch' of 'emails'",
        ),
        (
            r#"userName[type eq "x"]"#,
            "'userName' is not a complex attribute",
        ),
        (r#"emails.value[type eq "x"]"#, "not a complex attribute"),
        (
            r#"emails[type eq "work"].nosuch eq "x""#,
            "unknown sub-attribute 'nosuch'",
        ),
        (
            r#"emails[type eq "work"].value"#,
            "expected an operator after 'value'",
        ),
        (
            r#"emails[type eq "work"].value gt true"#,
            "needs a string or number",
        ),
        (r#"emails[type gt true]"#, "needs a string or number"),
        (
            r#"emails[primary co "t"]"#,
            "cannot compare the boolean attribute",
        ),
        (r#"[type eq "x"]"#, "expected an expression"),
    ]
    .iter()
    .map(|(i, d)| (i.to_string(), *d))
    .collect();
    for (input, want) in cases {
        let e = rejected(&input);
        assert_invalid_filter(&e);
        assert!(
            e.detail.contains(want),
            "{input:?}: detail {:?} should contain {want:?}",
            e.detail
        );
    }
}

#[test]
fn error_details_quote_long_input_briefly() {
    let name = "x".repeat(1000);
    let e = rejected(&format!("{name} pr"));
    assert!(e.detail.len() < 200, "{}", e.detail);
    assert!(e.detail.contains('…'));
}

// ---------------------------------------------------------------------------------------------
// Limits

fn nested_parens(levels: usize) -> String {
    format!("{}title pr{}", "(".repeat(levels), ")".repeat(levels))
}

fn nested_nots(levels: usize) -> String {
    format!("{}title pr{}", "not (".repeat(levels), ")".repeat(levels))
}

#[test]
fn nesting_at_the_limit_parses_and_one_more_fails() {
    assert_eq!(parsed(&nested_parens(MAX_DEPTH)), "title pr");
    let e = rejected(&nested_parens(MAX_DEPTH + 1));
    assert_invalid_filter(&e);
    assert!(e.detail.contains("deeper than 16"), "{}", e.detail);

    assert!(parse(&nested_nots(MAX_DEPTH)).is_ok());
    assert!(rejected(&nested_nots(MAX_DEPTH + 1))
        .detail
        .contains("deeper"));

    // A value path is one level too.
    let at_limit = format!(
        "{}emails[type pr]{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse(&at_limit).is_ok());
    let over = format!(
        "{}emails[type pr]{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(rejected(&over).detail.contains("deeper"));
    let inside = format!(
        "emails[{}type pr{}]",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse(&inside).is_ok());
    let inside_over = format!(
        "emails[{}type pr{}]",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(rejected(&inside_over).detail.contains("deeper"));
}

#[test]
fn hostile_nesting_fails_fast_without_overflow() {
    let e = rejected(&"(".repeat(100_000));
    assert_invalid_filter(&e);
    assert!(e.detail.contains("limit is 4096"), "{}", e.detail);
    for input in [
        "(".repeat(MAX_FILTER_LEN),
        "not (".repeat(MAX_FILTER_LEN / 5),
        "not(".repeat(MAX_FILTER_LEN / 4),
        format!("emails[{}", "(".repeat(MAX_FILTER_LEN - 7)),
    ] {
        let e = rejected(&input);
        assert!(e.detail.contains("deeper"), "{}", e.detail);
    }
}

#[test]
fn length_limit_is_exact_and_checked_first() {
    let prefix = r#"userName eq ""#;
    let fill = |total: usize| format!("{prefix}{}\"", "a".repeat(total - prefix.len() - 1));
    assert!(parse(&fill(MAX_FILTER_LEN)).is_ok());
    assert!(rejected(&fill(MAX_FILTER_LEN + 1))
        .detail
        .contains("4097 bytes"));
    // A megabyte of anything is refused by length, before tokenising.
    let e = rejected(&fill(1 << 20));
    assert!(e.detail.contains("limit is 4096"), "{}", e.detail);
    let e = rejected(&"\"".repeat(1 << 20));
    assert!(e.detail.contains("limit is 4096"), "{}", e.detail);
}

#[test]
fn long_flat_chains_parse_evaluate_and_print() {
    let clause = "title pr and ";
    let count = (MAX_FILTER_LEN - 20) / clause.len();
    let input = format!("{}userName pr", clause.repeat(count));
    let f = parse(&input).expect("flat chain parses");
    assert!(!matches(&f, &entra_user()));
    assert_eq!(f.to_string(), input);
    let or_chain = format!("{}userName pr", "title pr or ".repeat(count));
    let f = parse(&or_chain).expect("flat chain parses");
    assert!(matches(&f, &entra_user()));
}

// ---------------------------------------------------------------------------------------------
// Evaluation

#[test]
fn evaluates_against_an_entra_user() {
    let user = entra_user();
    let cases: Vec<(String, bool)> = [
        // Case-insensitive strings, case-exact ids.
        (r#"userName eq "alice@contoso.com""#, true),
        (r#"USERNAME Eq "ALICE@contoso.COM""#, true),
        (r#"userName eq "bob@contoso.com""#, false),
        (r#"userName ne "bob@contoso.com""#, true),
        (r#"userName ne "ALICE@CONTOSO.COM""#, false),
        (
            r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
            true,
        ),
        (
            r#"externalId eq "0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF""#,
            false,
        ),
        (r#"id eq "2819c223-7f76-453a-919d-413861904646""#, true),
        (r#"meta.resourceType eq "User""#, true),
        (r#"meta.resourceType eq "user""#, false),
        (r#"userName co "CONTOSO""#, true),
        (r#"userName sw "alice@""#, true),
        (r#"userName ew ".COM""#, true),
        (r#"userName ew ".net""#, false),
        (r#"userName co """#, true),
        (r#"userName gt "a""#, true),
        (r#"userName lt "a""#, false),
        (r#"userName ge "alice@contoso.com""#, true),
        (r#"userName le "ALICE@CONTOSO.COM""#, true),
        (r#"userName gt "ALICE@CONTOSO.COM""#, false),
        (r#"name.givenName eq "alice""#, true),
        (r#"name.familyName sw "Sm""#, true),
        (r#"displayName eq "Alice Smith""#, true),
        // Entra's lookup and value paths.
        (
            r#"emails[type eq "work"].value eq "alice@contoso.com""#,
            true,
        ),
        (
            r#"emails[type eq "WORK"].value eq "ALICE@CONTOSO.COM""#,
            true,
        ),
        (
            r#"emails[type eq "home"].value eq "alice@contoso.com""#,
            false,
        ),
        (r#"emails[type eq "work" and primary eq true]"#, true),
        (r#"emails[type eq "home" and primary eq true]"#, false),
        (r#"emails[type eq "home" and primary eq "False"]"#, true),
        (r#"emails[not (type eq "work")]"#, true),
        (r#"emails[type eq "other"]"#, false),
        (r#"emails[value ew "example.org"]"#, true),
        (r#"name[givenName eq "Alice"]"#, true),
        (r#"phoneNumbers[type eq "work"]"#, false),
        (r#"roles[value pr]"#, false),
        (r#"addresses[type pr]"#, false),
        // Multi-valued: any value.
        (r#"emails.value eq "alice@example.org""#, true),
        (r#"emails eq "ALICE@EXAMPLE.ORG""#, true),
        (r#"emails.value ne "alice@example.org""#, true),
        (r#"emails.type eq "other""#, false),
        (r#"emails.value co "@contoso""#, true),
        (r#"emails.value ew ".net""#, false),
        (r#"emails.primary eq false"#, true),
        // Presence and null.
        ("userName pr", true),
        ("title pr", false),
        ("title eq null", true),
        ("nickName pr", false),
        ("nickName eq null", true),
        ("nickName ne null", false),
        (r#"nickName ne "x""#, true),
        (r#"nickName eq "x""#, false),
        (r#"nickName co "x""#, false),
        ("roles pr", false),
        ("roles eq null", true),
        ("addresses pr", false),
        ("addresses eq null", true),
        ("emails pr", true),
        ("emails ne null", true),
        ("name pr", true),
        ("phoneNumbers.value pr", true),
        ("phoneNumbers.display pr", false),
        ("active pr", true),
        // Booleans, including Entra's strings.
        ("active eq true", true),
        ("active eq false", false),
        ("active ne false", true),
        (r#"active eq "True""#, true),
        (r#"active ne "false""#, true),
        (r#"active eq "yes""#, false),
        ("active eq 1", false),
        // Enterprise extension.
        (&format!(r#"{ENT}:department eq "sales""#), true),
        (&format!(r#"{ENT}:manager.value eq "{MANAGER_ID}""#), true),
        (&format!(r#"{ENT}:manager eq "{MANAGER_ID}""#), true),
        (&format!(r#"{ENT}:employeeNumber gt "7""#), true),
        (&format!(r#"{ENT}:employeeNumber eq "701984""#), true),
        (&format!("{ENT}:costCenter pr"), false),
        (&format!("{ENT}:manager pr"), true),
        (&format!("{ENT}:manager.displayName pr"), false),
        // Dates, chronologically.
        (r#"meta.created gt "2024-01-01T00:00:00Z""#, true),
        (r#"meta.created eq "2024-03-01T11:00:00+01:00""#, true),
        (r#"meta.created eq "2024-03-01T10:00:00.000Z""#, true),
        (r#"meta.created lt "2024-03-01T10:00:00.001Z""#, true),
        (r#"meta.created gt "2024-03-01T09:59:59.999-00:00""#, true),
        (r#"meta.lastModified ge "2024-03-05T07:30:00.5Z""#, true),
        (r#"meta.lastModified gt "2024-03-05T07:30:00.5Z""#, false),
        (r#"meta.created sw "2024-03""#, true),
        (r#"meta.created gt "2024""#, true),
        // Logic and precedence.
        (r#"not (userName eq "x")"#, true),
        (r#"userName eq "x" and title pr or active eq true"#, true),
        (r#"userName eq "x" and (title pr or active eq true)"#, false),
        (r#"active eq true or userName eq "x" and title pr"#, true),
        (r#"not (active eq true) or not (userName pr)"#, false),
        // Mismatched types are false, never errors.
        ("userName eq 5", false),
        ("userName eq true", false),
        ("userName gt 5", false),
        (r#"emails[primary eq "x"]"#, false),
    ]
    .iter()
    .map(|(i, b)| (i.to_string(), *b))
    .collect();
    for (input, want) in cases {
        assert_eq!(eval(&input, &user), want, "{input}");
    }
}

#[test]
fn looks_keys_up_case_insensitively_and_accepts_misspelt_extension() {
    let user = json!({
        "USERNAME": "x",
        "Emails": [{"Value": "a@b.c", "TYPE": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0User": {"Department": "Ops"}
    });
    assert!(eval(r#"userName eq "X""#, &user));
    assert!(eval(r#"emails[type eq "work"].value eq "a@b.c""#, &user));
    assert!(eval(&format!(r#"{ENT}:department eq "ops""#), &user));
}

#[test]
fn compares_numbers_numerically() {
    let user = json!({"externalId": 5, "displayName": 18446744073709551615u64, "title": 1.5});
    assert!(eval("externalId eq 5.0", &user));
    assert!(eval("externalId gt 4", &user));
    assert!(!eval("externalId lt 5", &user));
    assert!(eval("externalId ge -5", &user));
    assert!(eval("displayName gt -1", &user));
    assert!(eval("displayName eq 18446744073709551615", &user));
    assert!(eval("title lt 2", &user));
    assert!(eval("title gt 1.25", &user));
    assert!(!eval(r#"externalId eq "5""#, &user));
}

#[test]
fn survives_malformed_resources() {
    let filters = [
        r#"emails[type eq "work"].value eq "x""#,
        "emails.value pr",
        &format!(r#"{ENT}:manager.value eq "x""#),
        "name.givenName ne null",
        r#"meta.created gt "2024-01-01T00:00:00Z""#,
        "active eq true",
    ];
    let resources = [
        json!(null),
        json!("user"),
        json!([1, 2]),
        json!({"emails": "a@b.c", "name": [1, {"givenName": 3}], "meta": 7, "active": "maybe"}),
        json!({"emails": [null, 1, "x", [], {"type": ["work"], "value": ["x", null]}]}),
        json!({ENT: "not an object", "meta": {"created": 20240101}}),
    ];
    for input in filters {
        let f = parse(input).expect("parses");
        for resource in &resources {
            let _ = matches(&f, resource);
        }
    }
    // Arrays inside elements open up: a value of ["x"] counts as "x".
    assert!(eval(
        r#"emails[type eq "work"].value eq "x""#,
        &resources[4]
    ));
}

// ---------------------------------------------------------------------------------------------
// Element filters (PATCH paths)

#[test]
fn element_filters_parse_relative_to_the_parent() {
    let f = parse_element_filter(
        emails_def(),
        Home::Core,
        r#"TYPE eq "work" and primary eq true"#,
    )
    .expect("parses");
    assert_eq!(
        f.to_string(),
        r#"emails.type eq "work" and emails.primary eq true"#
    );
    assert!(matches_element(
        &f,
        &json!({"type": "Work", "value": "x", "primary": true})
    ));
    assert!(!matches_element(
        &f,
        &json!({"type": "home", "primary": true})
    ));
    assert!(!matches_element(&f, &json!("work")));
    assert!(!matches_element(&f, &json!(null)));

    let f = parse_element_filter(emails_def(), Home::Core, r#"value ew "@contoso.com""#)
        .expect("parses");
    assert!(matches_element(&f, &json!({"value": "A@CONTOSO.COM"})));

    let manager = schema::ENTERPRISE.attr("manager").expect("manager");
    let f = parse_element_filter(manager, Home::Enterprise, r#"value eq "m""#).expect("parses");
    assert!(matches_element(&f, &json!({"value": "M"})));
}

#[test]
fn element_filter_inner_of_parsed_filter_matches_elements() {
    let Ok(Filter::Element(_, inner)) = parse(r#"emails[type eq "work"].value eq "a@b.c""#) else {
        panic!("element filter")
    };
    assert!(matches_element(
        &inner,
        &json!({"type": "work", "value": "A@b.c"})
    ));
    assert!(!matches_element(
        &inner,
        &json!({"type": "work", "value": "x"})
    ));
}

#[test]
fn element_filters_reject_bad_input() {
    let emails = emails_def();
    for (input, want) in [
        ("", "empty filter"),
        (r#"emails.type eq "work""#, "unknown sub-attribute"),
        (
            r#"nosuch eq "x""#,
            "unknown sub-attribute 'nosuch' of 'emails'",
        ),
        (r#"value[type eq "x"]"#, "nested '['"),
        (r#"type eq "work"]"#, "unexpected ']'"),
        ("primary gt true", "cannot compare the boolean"),
    ] {
        let e = parse_element_filter(emails, Home::Core, input).expect_err(input);
        assert_invalid_filter(&e);
        assert!(e.detail.contains(want), "{input:?}: {}", e.detail);
    }
    let user_name = schema::USER.attr("userName").expect("userName");
    let e = parse_element_filter(user_name, Home::Core, "value pr").expect_err("not complex");
    assert!(e.detail.contains("not a complex attribute"), "{}", e.detail);
    let long = format!(r#"value eq "{}""#, "a".repeat(MAX_FILTER_LEN));
    assert!(parse_element_filter(emails, Home::Core, &long).is_err());
    // The brackets around the text count as one level.
    let at_limit = format!(
        "{}type pr{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(parse_element_filter(emails, Home::Core, &at_limit).is_ok());
    let over = format!("{}type pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse_element_filter(emails, Home::Core, &over).is_err());
}

// ---------------------------------------------------------------------------------------------
// eq_constraints

fn constraints(input: &str) -> Option<Vec<(&'static str, Value)>> {
    let f = parse_element_filter(emails_def(), Home::Core, input).expect("parses");
    eq_constraints(&f)
}

#[test]
fn eq_constraints_of_pure_conjunctions() {
    assert_eq!(
        constraints(r#"type eq "work""#),
        Some(vec![("type", json!("work"))])
    );
    assert_eq!(
        constraints(r#"TYPE eq "work" and primary eq "True""#),
        Some(vec![("type", json!("work")), ("primary", json!(true))])
    );
    assert_eq!(
        constraints(r#"(type eq "work" and primary eq false) and display eq "W""#),
        Some(vec![
            ("type", json!("work")),
            ("primary", json!(false)),
            ("display", json!("W"))
        ])
    );
    assert_eq!(
        constraints(r#"type eq "work" and type eq "work""#),
        Some(vec![("type", json!("work"))])
    );
    assert_eq!(
        constraints(r#"type eq null and value eq "x""#),
        Some(vec![("value", json!("x"))])
    );
    assert_eq!(constraints("value eq 7"), Some(vec![("value", json!(7))]));
    assert_eq!(
        eq_constraints(&parse(r#"userName eq "x""#).expect("parses")),
        Some(vec![("userName", json!("x"))])
    );
}

#[test]
fn eq_constraints_none_otherwise() {
    for input in [
        r#"type eq "work" or type eq "home""#,
        r#"not (type eq "work")"#,
        r#"type ne "work""#,
        r#"type co "work""#,
        "type pr",
        r#"type eq "work" and type eq "home""#,
        r#"type eq "work" and value sw "a""#,
    ] {
        assert_eq!(constraints(input), None, "{input}");
    }
    let f = parse(r#"emails[type eq "work"]"#).expect("parses");
    assert_eq!(eq_constraints(&f), None);
}

// ---------------------------------------------------------------------------------------------
// Small API pieces

#[test]
fn operators_round_trip_through_their_spelling() {
    for op in CompareOp::ALL {
        assert_eq!(CompareOp::from_keyword(op.as_str()), Some(op));
        assert_eq!(
            CompareOp::from_keyword(&op.as_str().to_uppercase()),
            Some(op)
        );
        let input = format!(r#"userName {} "x""#, op.as_str());
        assert_eq!(parsed(&input), input);
    }
    assert_eq!(CompareOp::from_keyword("pr"), None);
    assert!(CompareOp::Ge.is_ordering() && !CompareOp::Eq.is_ordering());
    assert!(CompareOp::Ew.is_substring() && !CompareOp::Ne.is_substring());
}

#[test]
fn literals_convert_to_json_and_print_as_json() {
    assert_eq!(Literal::String("a\"b".into()).to_json(), json!("a\"b"));
    assert_eq!(Literal::Number(3.into()).to_json(), json!(3));
    assert_eq!(Literal::Bool(true).to_json(), json!(true));
    assert_eq!(Literal::Null.to_json(), Value::Null);
    assert_eq!(
        Literal::String("a\"b\\\n".into()).to_string(),
        r#""a\"b\\\n""#
    );
    assert_eq!(Literal::Null.to_string(), "null");
}

// ---------------------------------------------------------------------------------------------
// Properties

/// `word` with each ASCII letter's case chosen at random.
fn any_case(word: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
        word.chars()
            .zip(upper)
            .map(|(c, u)| {
                if u {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

fn space() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", "  ", " \t "])
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9@. ]{0,8}",
        "[ -~]{0,8}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
        Just("2024-03-01T10:00:00Z".to_string()),
        Just("work".to_string()),
        Just("alice@contoso.com".to_string()),
    ]
    .prop_map(|s| Value::String(s).to_string())
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-1e6f64..1e6).prop_map(|n| Value::from(n).to_string()),
    ]
}

fn op_of(ops: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(ops).prop_flat_map(any_case)
}

const ALL_OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
const ORDER_OPS: &[&str] = &["eq", "ne", "gt", "ge", "lt", "le"];
const EQ_OPS: &[&str] = &["eq", "ne"];

fn string_attr() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "userName",
            "displayName",
            "title",
            "name.givenName",
            "emails.value",
            "emails.type",
            "externalId",
            "meta.created",
            "meta.resourceType",
            "nickName",
            "id",
        ])
        .prop_flat_map(any_case),
        Just(format!("{ENT}:department")),
        Just(format!("{CORE}:nickName")),
    ]
}

fn any_attr() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "userName",
        "title",
        "active",
        "emails",
        "name",
        "roles",
        "addresses",
        "emails.primary",
        "meta",
        "phoneNumbers.value",
    ])
    .prop_flat_map(any_case)
}

/// A valid comparison or presence test at the top level.
fn atom() -> BoxedStrategy<String> {
    prop_oneof![
        (
            string_attr(),
            space(),
            op_of(ALL_OPS),
            space(),
            json_string()
        )
            .prop_map(|(a, s1, op, s2, v)| format!("{a}{s1}{op}{s2}{v}")),
        (string_attr(), op_of(ORDER_OPS), number()).prop_map(|(a, op, n)| format!("{a} {op} {n}")),
        (any_attr(), any_case("pr")).prop_map(|(a, pr)| format!("{a} {pr}")),
        (any_attr(), op_of(EQ_OPS), any_case("null"))
            .prop_map(|(a, op, n)| format!("{a} {op} {n}")),
        (
            prop::sample::select(vec!["active", "emails.primary"]),
            op_of(EQ_OPS),
            prop::sample::select(vec!["true", "FALSE", "\"True\"", "\"false\""]),
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (op_of(&["eq", "co", "sw"]), json_string()).prop_map(|(op, v)| format!("emails {op} {v}")),
        (
            element_inner(),
            prop::option::of((op_of(ALL_OPS), json_string()))
        )
            .prop_map(|(inner, tail)| match tail {
                Some((op, v)) => format!("emails[{inner}].value {op} {v}"),
                None => format!("emails[{inner}]"),
            }),
    ]
    .boxed()
}

/// A valid filter over the sub-attributes of `emails`.
fn element_inner() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (
            prop::sample::select(vec!["type", "value", "display"]).prop_flat_map(any_case),
            op_of(ALL_OPS),
            json_string()
        )
            .prop_map(|(a, op, v)| format!("{a} {op} {v}")),
        (
            any_case("primary"),
            op_of(EQ_OPS),
            prop::sample::select(vec!["true", "false"])
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        prop::sample::select(vec!["type pr", "VALUE PR", "display eq null"]).prop_map(String::from),
    ];
    leaf.prop_recursive(2, 8, 2, combine)
}

fn combine(inner: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![
        (inner.clone(), any_case("and"), inner.clone())
            .prop_map(|(a, k, b)| format!("{a} {k} {b}")),
        (inner.clone(), any_case("or"), inner.clone()).prop_map(|(a, k, b)| format!("{a} {k} {b}")),
        inner.clone().prop_map(|a| format!("({a})")),
        (any_case("not"), space(), inner).prop_map(|(k, s, a)| format!("{k}{s}({a})")),
    ]
    .boxed()
}

fn valid_filter() -> impl Strategy<Value = String> {
    atom().prop_recursive(4, 24, 2, combine)
}

proptest! {
    #[test]
    fn parse_never_panics_on_strings(s in any::<String>()) {
        let _ = parse(&s);
        let _ = parse_element_filter(emails_def(), Home::Core, &s);
    }

    #[test]
    fn parse_never_panics_on_lossy_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_filter_like_text(
        s in r#"([a-zA-Z.:$\[\]()" \\0-9-]|eq|pr|and|or|not|emails|userName|true|null){0,60}"#
    ) {
        if let Ok(f) = parse(&s) {
            // Whatever parses prints to something that parses back the same.
            let text = f.to_string();
            let again = parse(&text);
            prop_assert!(again.is_ok(), "{s:?} printed as {text:?}: {again:?}");
            if let Ok(again) = again {
                prop_assert_eq!(again.to_string(), text);
            }
        }
        let _ = parse_element_filter(emails_def(), Home::Core, &s);
    }

    #[test]
    fn printing_then_parsing_is_stable(input in valid_filter()) {
        let f = parse(&input);
        prop_assert!(f.is_ok(), "{input:?} should parse: {f:?}");
        let Ok(f) = f else { return Ok(()); };
        let text = f.to_string();
        let again = parse(&text);
        prop_assert!(again.is_ok(), "{input:?} printed as {text:?}: {again:?}");
        let Ok(again) = again else { return Ok(()); };
        prop_assert_eq!(again.to_string(), text.clone());
        for resource in [entra_user(), other_user(), json!({})] {
            prop_assert_eq!(matches(&f, &resource), matches(&again, &resource), "{}", text);
            let negated = Filter::Not(Box::new(f.clone()));
            prop_assert_eq!(matches(&negated, &resource), !matches(&f, &resource));
        }
    }

    #[test]
    fn string_literals_round_trip(s in any::<String>().prop_map(|s| s.chars().take(200).collect::<String>())) {
        let input = format!("userName eq {}", Value::String(s.clone()));
        let f = parse(&input);
        prop_assert!(matches!(&f, Ok(Filter::Compare(_, CompareOp::Eq, Literal::String(v))) if *v == s), "{f:?}");
        if let Ok(f) = f {
            prop_assert_eq!(f.to_string(), input);
            let user = json!({"userName": s});
            prop_assert!(matches(&f, &user));
        }
    }

    #[test]
    fn string_comparisons_are_consistent(value in "[a-zA-Z]{0,4}", literal in "[a-zA-Z]{0,4}") {
        let user = json!({"userName": value});
        let lit = Value::String(literal.clone());
        let holds = |op: &str| eval(&format!("userName {op} {lit}"), &user);
        let equal = value.to_lowercase() == literal.to_lowercase();
        prop_assert_eq!(holds("eq"), equal);
        prop_assert_eq!(holds("ne"), !equal);
        // Exactly one of lt, eq, gt.
        prop_assert_eq!([holds("lt"), holds("eq"), holds("gt")].iter().filter(|b| **b).count(), 1);
        prop_assert_eq!(holds("ge"), holds("gt") || holds("eq"));
        prop_assert_eq!(holds("le"), holds("lt") || holds("eq"));
        if equal {
            prop_assert!(holds("co") && holds("sw") && holds("ew"));
        }
        prop_assert_eq!(holds("sw"), value.to_lowercase().starts_with(&literal.to_lowercase()));
        // Case-exact attributes see case.
        let exact = json!({"externalId": value});
        prop_assert_eq!(eval(&format!("externalId eq {lit}"), &exact), value == literal);
    }

    #[test]
    fn date_comparisons_are_chronological(a in 0i64..4_000_000_000, b in 0i64..4_000_000_000) {
        let stamp = |secs: i64| {
            time::OffsetDateTime::from_unix_timestamp(secs)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default()
        };
        let user = json!({"meta": {"created": stamp(a)}});
        let filter = format!(r#"meta.created gt "{}""#, stamp(b));
        prop_assert_eq!(eval(&filter, &user), a > b);
    }

    #[test]
    fn matching_never_panics_on_arbitrary_json(resource in arbitrary_json()) {
        for input in [
            r#"emails[type eq "work"].value eq "x""#,
            "emails.value pr",
            "name.givenName ne null",
            r#"meta.created gt "2024-01-01T00:00:00Z""#,
            "active eq true",
            "userName gt 3",
            "title eq null or not (displayName pr)",
        ] {
            let f = parse(input);
            prop_assert!(f.is_ok());
            if let Ok(f) = f {
                let _ = matches(&f, &resource);
                let _ = matches_element(&f, &resource);
            }
        }
    }
}

/// JSON values biased towards the User's own keys.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9:.-]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        let key = prop::sample::select(vec![
            "userName",
            "emails",
            "type",
            "value",
            "name",
            "givenName",
            "meta",
            "created",
            "active",
            "title",
            "displayName",
            ENT,
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..4).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Some Entra tenants send extension attributes unqualified; they resolve to the only schema that
/// defines them, while a core URN in front still rejects them.
#[test]
fn unqualified_extension_attributes_resolve_to_the_extension() {
    let user = entra_user();
    assert_eq!(
        parsed(r#"department eq "Sales""#),
        format!(r#"{ENT}:department eq "Sales""#)
    );
    assert!(eval(r#"department eq "sales""#, &user));
    assert!(eval(r#"employeeNumber eq "701984""#, &user));
    assert!(eval(&format!(r#"manager.value eq "{MANAGER_ID}""#), &user));
    assert!(!eval(r#"costCenter pr"#, &user));
    assert_invalid_filter(&rejected(&format!("{CORE}:department pr")));
}

#[test]
fn group_filters_resolve_against_the_group_schema() {
    let group = json!({"id": "7", "displayName": "Sales EMEA", "externalId": "e-7",
        "members": [{"value": "1"}, {"value": "2"}]});
    let group_eval = |text: &str| matches(&parse_for(ResourceKind::Group, text).unwrap(), &group);
    assert!(group_eval(r#"displayName eq "sales emea""#));
    assert!(!group_eval(r#"externalId eq "E-7""#));
    assert!(group_eval(
        r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName sw "Sales""#
    ));
    assert!(group_eval(r#"members[value eq "2"]"#));
    assert!(group_eval(r#"members.value eq "1" and id eq "7""#));
    for user_only in ["userName eq \"a\"", &format!("{CORE}:displayName eq \"x\"")] {
        assert_invalid_filter(&parse_for(ResourceKind::Group, user_only).unwrap_err());
    }
}
