//! Subscriptions to microcloud channels that survive a lost connection.
//!
//! A RESP3 connection carries the subscription: messages arrive as push replies on the
//! same connection, so the connection manager that reopens it after a drop also repeats
//! the SUBSCRIBE commands. Redis keeps no history of a channel, so what was published
//! while the connection was down is not delivered; [`Delivery::Disconnected`] marks the gap.
//!
//! The manager reopens a dropped connection only a few times before it waits for the next
//! command. A heartbeat task therefore sends PING at a fixed interval: a PING that fails
//! starts another reconnect, and a connection that stopped replying (a half-open peer)
//! times out and is replaced.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;

use super::keys::Keys;
use super::{redact_url, BACKEND};
use crate::microcloud::MicrocloudError;

/// Returns the channel that carries every session event under `prefix` (`<prefix>v1:events`).
pub fn events_channel(prefix: &str) -> String {
    Keys::new(prefix).events_channel()
}

/// Returns the channel that carries the session events of `imsi` under `prefix`.
pub fn subscriber_channel(prefix: &str, imsi: &str) -> String {
    Keys::new(prefix).subscriber_channel(imsi)
}

/// Settings of a [`Subscription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Time between two heartbeat PINGs.
    pub heartbeat: Duration,
    /// Maximum time to open a connection.
    pub connect_timeout: Duration,
    /// Maximum time to wait for the reply to a PING or SUBSCRIBE.
    pub response_timeout: Duration,
}

impl Default for SubscriptionConfig {
    /// Returns a 1-s heartbeat, a 2-s connect timeout and a 5-s reply timeout.
    fn default() -> Self {
        SubscriptionConfig {
            heartbeat: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
        }
    }
}

/// An item received by a [`Subscription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A message published on a subscribed channel.
    Message {
        /// Channel name.
        channel: String,
        /// Payload bytes, as published.
        payload: Vec<u8>,
    },
    /// The server confirmed a subscription: once per channel when the subscription starts,
    /// and again after each reconnect.
    Subscribed {
        /// Channel name.
        channel: String,
    },
    /// The connection dropped. Messages published until the next [`Delivery::Subscribed`]
    /// are lost.
    Disconnected,
}

/// A subscription to a fixed set of channels.
pub struct Subscription {
    pushes: UnboundedReceiver<PushInfo>,
    heartbeat: JoinHandle<()>,
    /// Kept so that the connection lives as long as the subscription.
    _connection: ConnectionManager,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    /// Connects to the server at `url` and subscribes to `channels`.
    ///
    /// Fails, naming the URL without its password, when the URL is invalid, the server
    /// does not reply, or it rejects the subscription (Redis before 6.0 has no RESP3).
    pub async fn open(url: &str, channels: &[String], config: &SubscriptionConfig) -> Result<Subscription, MicrocloudError> {
        let redacted_url = redact_url(url);
        let client = resp3_client(url, &redacted_url)?;
        let (sender, pushes) = unbounded_channel();
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(2)
            .set_push_sender(sender)
            .set_automatic_resubscription();
        let fail = |error: redis::RedisError| MicrocloudError::Unavailable {
            backend: BACKEND,
            reason: format!("cannot subscribe on {redacted_url}: {error}"),
        };
        let mut connection = ConnectionManager::new_with_config(client, manager_config).await.map_err(fail)?;
        connection.subscribe(channels).await.map_err(fail)?;
        let heartbeat = tokio::spawn(heartbeat(connection.clone(), config.heartbeat));
        Ok(Subscription { pushes, heartbeat, _connection: connection })
    }

    /// Waits for the next delivery. Returns `None` only when the connection manager is
    /// gone, which does not happen while the subscription lives.
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            let push = self.pushes.recv().await?;
            if let Some(delivery) = delivery_of(push) {
                return Some(delivery);
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Builds a client for `url` that speaks RESP3, whatever protocol the URL names.
fn resp3_client(url: &str, redacted_url: &str) -> Result<Client, MicrocloudError> {
    let invalid = |error: redis::RedisError| MicrocloudError::InvalidUrl { url: redacted_url.to_owned(), reason: error.to_string() };
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(invalid)?;
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(settings)).map_err(invalid)
}

/// Sends PING every `interval` for as long as the subscription lives. A failed PING is
/// logged once per outage; the next one that succeeds is logged too.
async fn heartbeat(mut connection: ConnectionManager, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        match redis::cmd("PING").query_async::<Value>(&mut connection).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("subscription connection is back");
            }
            Ok(_) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "subscription connection lost, reconnecting");
            }
            Err(_) => {}
        }
    }
}

/// Converts a push reply into a delivery; other push kinds (unsubscribe confirmations,
/// PING replies on the push channel) give `None`.
fn delivery_of(push: PushInfo) -> Option<Delivery> {
    match push.kind {
        PushKind::Disconnection => Some(Delivery::Disconnected),
        PushKind::Subscribe => {
            let channel = push.data.first().and_then(text_of)?;
            Some(Delivery::Subscribed { channel })
        }
        PushKind::Message => {
            let mut data = push.data.into_iter();
            let channel = data.next().as_ref().and_then(text_of)?;
            let payload = bytes_of(data.next()?)?;
            Some(Delivery::Message { channel, payload })
        }
        _ => None,
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

fn bytes_of(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn message_push_becomes_message() {
        let push = PushInfo { kind: PushKind::Message, data: vec![bulk("imsitrace:v1:events"), bulk("{}")] };
        let expected = Delivery::Message { channel: "imsitrace:v1:events".into(), payload: b"{}".to_vec() };
        assert_eq!(delivery_of(push), Some(expected));
    }

    #[test]
    fn subscribe_confirmation_names_channel() {
        let push = PushInfo { kind: PushKind::Subscribe, data: vec![bulk("imsi.create"), Value::Int(1)] };
        assert_eq!(delivery_of(push), Some(Delivery::Subscribed { channel: "imsi.create".into() }));
    }

    #[test]
    fn disconnection_and_other_pushes() {
        assert_eq!(delivery_of(PushInfo { kind: PushKind::Disconnection, data: vec![] }), Some(Delivery::Disconnected));
        assert_eq!(delivery_of(PushInfo { kind: PushKind::Unsubscribe, data: vec![bulk("x"), Value::Int(0)] }), None);
        assert_eq!(delivery_of(PushInfo { kind: PushKind::Message, data: vec![bulk("x")] }), None, "no payload");
    }
}
