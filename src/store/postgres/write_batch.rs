//! Group commit of the two writes every SCIM create and update makes: a user's pending-create
//! note and a user's record. Each shared write connection queues them ([`super::batch_queue`])
//! and sends what queued as at most one statement of each kind: under load, the server runs and
//! commits one statement for many writers instead of one for each. A request alone goes as the
//! single-row statement.
//!
//! A statement is all or nothing. When the server refuses a batch (a row it cannot take, or two
//! rows of one key, which `ON CONFLICT DO UPDATE` refuses within one statement), nothing of it
//! was written, and each of its requests is sent again alone, so that each gets its own answer.

use super::super::StoreError;
use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;

/// At most this many requests go in one statement; the rest go in the next.
pub(super) const MOST: usize = 64;

/// One record: the user, and its create no longer pending. With the user's work addresses and
/// the hash of the resource they come from ([`super::work_emails`]).
const PUT: &str = "WITH up AS (
    INSERT INTO users (tenant, id, external_id, shadow, managed, created, last_modified,
        work_email_set, work_email_of)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $10)
    ON CONFLICT (tenant, id) DO UPDATE SET external_id = EXCLUDED.external_id,
        shadow = EXCLUDED.shadow, managed = EXCLUDED.managed, created = EXCLUDED.created,
        last_modified = EXCLUDED.last_modified, work_email_set = EXCLUDED.work_email_set,
        work_email_of = EXCLUDED.work_email_of
) DELETE FROM pending_creates WHERE tenant = $1 AND user_name = $8";
/// [`PUT`] for many records of one tenant (`$1`), one array per other column. A user's work
/// addresses come as the text of a `text[]` each, since a list of lists cannot be one parameter.
///
/// Each note is found by its whole primary key, one search per user name, and deleted by the
/// row's address (a note written again meanwhile has a new address and stays, as it should).
/// `pending_creates` holds few live rows but a dead one for every create until it is vacuumed,
/// and a plan made from its statistics reads every one of them: a join to the batch was planned
/// as a scan of the table, and `user_name = ANY($8)` as a search by tenant alone that filters
/// what it finds (in S6 of the benchmark: 0.1 ms per record over 4,000 creates, 0.25 ms over
/// 20,000). A `LIMIT` keeps each search apart, so it cannot become a join.
pub const PUT_MANY: &str = "WITH up AS (
    INSERT INTO users (tenant, id, external_id, shadow, managed, created, last_modified,
        work_email_set, work_email_of)
    SELECT $1::text, id, external_id, shadow, managed, created, last_modified, emails::text[],
        emails_of
    FROM unnest($2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[],
        $9::text[], $10::bytea[])
        AS r(id, external_id, shadow, managed, created, last_modified, emails, emails_of)
    ON CONFLICT (tenant, id) DO UPDATE SET external_id = EXCLUDED.external_id,
        shadow = EXCLUDED.shadow, managed = EXCLUDED.managed, created = EXCLUDED.created,
        last_modified = EXCLUDED.last_modified, work_email_set = EXCLUDED.work_email_set,
        work_email_of = EXCLUDED.work_email_of
) DELETE FROM pending_creates WHERE ctid = ANY (ARRAY(
    SELECT note.ctid FROM unnest($8::text[]) AS k(user_name),
        LATERAL (SELECT ctid FROM pending_creates
            WHERE tenant = $1 AND user_name = k.user_name LIMIT 1) AS note
))";
/// One pending-create note.
const PUT_PENDING: &str = "INSERT INTO pending_creates (tenant, user_name, shadow, created) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, user_name) \
                           DO UPDATE SET shadow = EXCLUDED.shadow, created = EXCLUDED.created";
/// [`PUT_PENDING`] for many notes, one array per column.
const PUT_PENDING_MANY: &str = "INSERT INTO pending_creates (tenant, user_name, shadow, created) \
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) \
    ON CONFLICT (tenant, user_name) \
    DO UPDATE SET shadow = EXCLUDED.shadow, created = EXCLUDED.created";

/// A write that goes in a batch.
pub(super) enum Write {
    /// A pending-create note.
    Note(Note),
    /// A user's record, which clears its pending-create note.
    Record(Record),
}

/// A pending-create note, as `pending_creates` keeps it.
pub(super) struct Note {
    pub(super) tenant: String,
    /// Lower case.
    pub(super) user_name: String,
    pub(super) shadow: String,
    pub(super) created: String,
}

/// A user's record, as `users` keeps it.
pub(super) struct Record {
    pub(super) tenant: String,
    pub(super) id: String,
    pub(super) external_id: Option<String>,
    pub(super) shadow: String,
    pub(super) managed: bool,
    pub(super) created: String,
    pub(super) last_modified: String,
    /// The pending-create note the record clears.
    pub(super) user_name: Option<String>,
    pub(super) emails: Vec<String>,
    pub(super) emails_of: Vec<u8>,
}

/// One queued write and where its answer goes.
pub(super) struct Request {
    write: Write,
    answer: oneshot::Sender<Result<(), StoreError>>,
}

/// Where a request's answer arrives.
pub(super) struct Answer(oneshot::Receiver<Result<(), StoreError>>);

/// A statement and its parameters.
pub(super) type Statement<'a> = (&'static str, Vec<&'a (dyn ToSql + Sync)>);

impl Request {
    /// A request for `write`, and where its answer will arrive.
    pub(super) fn new(write: Write) -> (Request, Answer) {
        let (answer, answered) = oneshot::channel();
        (Request { write, answer }, Answer(answered))
    }

    /// The statement that makes this write alone.
    pub(super) fn alone(&self) -> Statement<'_> {
        match &self.write {
            Write::Note(n) => (
                PUT_PENDING,
                vec![&n.tenant, &n.user_name, &n.shadow, &n.created],
            ),
            Write::Record(r) => (
                PUT,
                vec![
                    &r.tenant,
                    &r.id,
                    &r.external_id,
                    &r.shadow,
                    &r.managed,
                    &r.created,
                    &r.last_modified,
                    &r.user_name,
                    &r.emails,
                    &r.emails_of,
                ],
            ),
        }
    }

    /// Gives the request its answer.
    pub(super) fn answer(self, result: Result<(), StoreError>) {
        let _ = self.answer.send(result);
    }
}

impl Answer {
    /// The request's answer, once its statement was answered.
    pub(super) async fn get(self) -> Result<(), StoreError> {
        self.0.await.map_err(|_| {
            StoreError::Unavailable("the batch of store writes was abandoned".into())
        })?
    }
}

/// `batch` in groups that each go as one statement: the notes, then the records of each tenant,
/// each group in the order its requests queued. Empty groups are left out.
pub(super) fn groups(batch: Vec<Request>) -> Vec<Vec<Request>> {
    let mut notes = Vec::new();
    let mut records: Vec<(String, Vec<Request>)> = Vec::new();
    for request in batch {
        match &request.write {
            Write::Note(_) => notes.push(request),
            Write::Record(r) => match records.iter_mut().find(|(t, _)| *t == r.tenant) {
                Some((_, group)) => group.push(request),
                None => records.push((r.tenant.clone(), vec![request])),
            },
        }
    }
    std::iter::once(notes)
        .chain(records.into_iter().map(|(_, group)| group))
        .filter(|g| !g.is_empty())
        .collect()
}

/// The parameters of one statement that makes many writes of one kind: a column each.
pub(super) enum Together<'a> {
    /// [`PUT_PENDING_MANY`]: tenant, user name, resource, created.
    Notes([Vec<&'a str>; 4]),
    /// [`PUT_MANY`].
    Records(RecordColumns<'a>),
}

/// The parameters of [`PUT_MANY`].
pub(super) struct RecordColumns<'a> {
    tenant: &'a str,
    /// Id, externalId, resource, created, last modified, user name.
    text: [Vec<Option<&'a str>>; 6],
    managed: Vec<bool>,
    emails: Vec<String>,
    emails_of: Vec<&'a [u8]>,
}

impl<'a> Together<'a> {
    /// The columns of `group`'s writes, which are all notes or all records of one tenant (as
    /// [`groups`] gives them).
    pub(super) fn new(group: &'a [Request]) -> Together<'a> {
        let notes: Vec<&Note> = group.iter().filter_map(|r| r.write.note()).collect();
        if notes.len() == group.len() {
            let column = |f: fn(&Note) -> &str| notes.iter().map(|n| f(n)).collect();
            return Together::Notes([
                column(|n| &n.tenant),
                column(|n| &n.user_name),
                column(|n| &n.shadow),
                column(|n| &n.created),
            ]);
        }
        let records: Vec<&Record> = group.iter().filter_map(|r| r.write.record()).collect();
        let column = |f: fn(&Record) -> Option<&str>| records.iter().map(|r| f(r)).collect();
        Together::Records(RecordColumns {
            tenant: records.first().map_or("", |r| &r.tenant),
            text: [
                column(|r| Some(&r.id)),
                column(|r| r.external_id.as_deref()),
                column(|r| Some(&r.shadow)),
                column(|r| Some(&r.created)),
                column(|r| Some(&r.last_modified)),
                column(|r| r.user_name.as_deref()),
            ],
            managed: records.iter().map(|r| r.managed).collect(),
            emails: records.iter().map(|r| array_text(&r.emails)).collect(),
            emails_of: records.iter().map(|r| r.emails_of.as_slice()).collect(),
        })
    }

    /// The statement and its parameters.
    pub(super) fn statement(&self) -> Statement<'_> {
        match self {
            Together::Notes(columns) => (
                PUT_PENDING_MANY,
                columns.iter().map(|c| c as &(dyn ToSql + Sync)).collect(),
            ),
            Together::Records(c) => {
                let [id, external_id, shadow, created, last_modified, user_name] = &c.text;
                (
                    PUT_MANY,
                    vec![
                        &c.tenant,
                        id,
                        external_id,
                        shadow,
                        &c.managed,
                        created,
                        last_modified,
                        user_name,
                        &c.emails,
                        &c.emails_of,
                    ],
                )
            }
        }
    }
}

impl Write {
    fn note(&self) -> Option<&Note> {
        match self {
            Write::Note(n) => Some(n),
            Write::Record(_) => None,
        }
    }

    fn record(&self) -> Option<&Record> {
        match self {
            Write::Record(r) => Some(r),
            Write::Note(_) => None,
        }
    }
}

/// `items` as the text of a PostgreSQL `text[]`: each element quoted, `"` and `\` escaped.
fn array_text(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|item| {
            let escaped = item.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(tenant: &str, user_name: &str) -> Request {
        let note = Note {
            tenant: tenant.into(),
            user_name: user_name.into(),
            shadow: "{}".into(),
            created: "c".into(),
        };
        Request::new(Write::Note(note)).0
    }

    fn record(tenant: &str, id: &str) -> Request {
        let record = Record {
            tenant: tenant.into(),
            id: id.into(),
            external_id: None,
            shadow: "{}".into(),
            managed: true,
            created: "c".into(),
            last_modified: "m".into(),
            user_name: None,
            emails: Vec::new(),
            emails_of: Vec::new(),
        };
        Request::new(Write::Record(record)).0
    }

    /// A group as `kind:tenant:key` strings.
    fn names(group: &[Request]) -> Vec<String> {
        group
            .iter()
            .map(|r| match &r.write {
                Write::Note(n) => format!("note:{}:{}", n.tenant, n.user_name),
                Write::Record(r) => format!("record:{}:{}", r.tenant, r.id),
            })
            .collect()
    }

    /// What [`groups`] makes of `batch`, as names.
    fn groups_of(batch: Vec<Request>) -> Vec<Vec<String>> {
        groups(batch).iter().map(|g| names(g)).collect()
    }

    #[test]
    fn a_batch_goes_as_its_notes_then_each_tenants_records_in_the_order_they_queued() {
        let batch = vec![
            record("acme", "1"),
            note("globex", "a"),
            record("globex", "2"),
            record("acme", "3"),
            note("acme", "b"),
        ];
        assert_eq!(
            groups_of(batch),
            [
                vec!["note:globex:a", "note:acme:b"],
                vec!["record:acme:1", "record:acme:3"],
                vec!["record:globex:2"],
            ]
        );
        assert_eq!(
            groups_of(vec![record("acme", "1")]),
            [vec!["record:acme:1"]]
        );
        assert!(groups_of(Vec::new()).is_empty());
    }

    #[test]
    fn a_list_of_addresses_becomes_the_text_of_an_array() {
        assert_eq!(array_text(&[]), "{}");
        let items = ["a@x.test".to_string(), r#"q"u\o,{t}e@x.test"#.to_string()];
        assert_eq!(array_text(&items), r#"{"a@x.test","q\"u\\o,{t}e@x.test"}"#);
    }
}
