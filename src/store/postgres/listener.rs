//! Receives the database's notifications of changed user rows (schema 10's trigger sends one per
//! row updated or deleted, through any gateway) on a connection of its own, and keeps the [`RecordCache`]
//! true with them. A heartbeat every [`HEARTBEAT`] proves the notifications flow: the server
//! answers it on the same connection after every notification committed before it, so once it
//! is answered the cache is true up to when it was sent, and is used for [`TRUSTED_FOR`] from
//! then. A heartbeat unanswered within [`TRUSTED_FOR`] ends the connection. While there is no
//! connection the cache is unused and empty; the listener reconnects by itself every [`RETRY`].

use super::record_cache::RecordCache;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Config, Connection, NoTls, Socket};

/// Listens to the channel schema 10's trigger notifies, with `[tenant, id]` as JSON.
const LISTEN: &str = "LISTEN scimgate_users";

/// The listening session's `application_name`, as `pg_stat_activity` shows it.
pub(super) const APPLICATION_NAME: &str = "scimgate notifications";

/// How often the listener proves that notifications flow.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// How long the cache is used after a heartbeat was sent, and how long one may go unanswered:
/// with [`HEARTBEAT`], the bound on how late a change can show if notifications stall.
pub(super) const TRUSTED_FOR: Duration = Duration::from_millis(1_500);

/// How long the listener waits before connecting again.
const RETRY: Duration = Duration::from_secs(1);

/// The listening task; it stops when this is dropped (with the store).
pub(super) struct Listener {
    task: JoinHandle<()>,
}

impl Listener {
    /// Starts listening on `rt` with `config`, each connection attempt bounded by
    /// `connect_timeout`.
    pub(super) fn start(
        rt: &Handle,
        mut config: Config,
        connect_timeout: Duration,
        cache: Arc<RecordCache>,
    ) -> Listener {
        config.application_name(APPLICATION_NAME);
        let task = rt.spawn(async move {
            loop {
                let ended = listen(&config, connect_timeout, &cache).await;
                cache.go_dark();
                tracing::warn!(reason = %ended, "not receiving PostgreSQL change notifications; the record cache is off until they are back");
                tokio::time::sleep(RETRY).await;
            }
        });
        Listener { task }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects, listens and keeps `cache` true until the connection ends or stalls; answers why it
/// ended.
async fn listen(config: &Config, connect_timeout: Duration, cache: &Arc<RecordCache>) -> String {
    let (client, connection) = match timeout(connect_timeout, config.connect(NoTls)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return e.to_string(),
        Err(_) => return "PostgreSQL did not accept a connection in time".into(),
    };
    let mut receiving = tokio::spawn(receive(connection, cache.clone()));
    let beating = async {
        let sent = Instant::now();
        match timeout(TRUSTED_FOR, client.batch_execute(LISTEN)).await {
            Ok(Ok(())) => cache.go_live(sent + TRUSTED_FOR),
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "no answer to LISTEN".into(),
        }
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let sent = Instant::now();
            match timeout(TRUSTED_FOR, client.batch_execute("SELECT 1")).await {
                Ok(Ok(())) => cache.alive_until(sent + TRUSTED_FOR),
                Ok(Err(e)) => return e.to_string(),
                Err(_) => return "the heartbeat went unanswered".into(),
            }
        }
    };
    tokio::select! {
        ended = &mut receiving => ended.unwrap_or_else(|e| e.to_string()),
        ended = beating => {
            receiving.abort();
            ended
        }
    }
}

/// Drives the connection, applying each notification to `cache`, until it ends; answers why.
async fn receive(
    mut connection: Connection<Socket, NoTlsStream>,
    cache: Arc<RecordCache>,
) -> String {
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            None => return "the notification connection closed".into(),
            Some(Err(e)) => return e.to_string(),
            Some(Ok(AsyncMessage::Notification(n))) => match changed_user(n.payload()) {
                Some((tenant, id)) => cache.forget(&tenant, &id),
                None => cache.forget_all(),
            },
            Some(Ok(_)) => {}
        }
    }
}

/// The tenant and id a notification names (`["acme", "usr_1"]`).
fn changed_user(payload: &str) -> Option<(String, String)> {
    match serde_json::from_str::<Value>(payload).ok()? {
        Value::Array(pair) => match pair.as_slice() {
            [Value::String(tenant), Value::String(id)] => Some((tenant.clone(), id.clone())),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_names_one_user_or_nobody() {
        assert_eq!(
            changed_user(r#"["acme","usr_1"]"#),
            Some(("acme".into(), "usr_1".into()))
        );
        for bad in ["", "acme usr_1", r#"["acme"]"#, r#"["acme",1]"#, "{}"] {
            assert_eq!(changed_user(bad), None, "{bad}");
        }
    }
}
