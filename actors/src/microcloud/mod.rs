//! The microcloud: state shared between nodes.
//!
//! It contains each subscriber's state, the tunnel index (endpoint IP + TEID -> IMSI) that
//! lets a shard at one site attribute G-PDUs whose signalling was seen at another site,
//! the session-event channel and the aggregation buckets. [`Microcloud`] is the interface
//! the microcloud actor is generic over. [`EmbeddedMicrocloud`] keeps everything in
//! process memory, for a single machine with no Redis server. [`RedisMicrocloud`] keeps it
//! on a Redis server that every node of a cluster connects to.

pub mod embedded;
mod error;
pub mod redis;
mod state;

#[cfg(test)]
mod tests;

use std::future::Future;

pub use embedded::{EmbeddedConfig, EmbeddedMicrocloud, EmbeddedStats};
pub use error::MicrocloudError;
pub use self::redis::{RedisConfig, RedisMicrocloud};
pub use state::{AttachState, SessionTunnel, SubscriberState, TunnelChanges};

use crate::bucket::BucketDelta;
use crate::session::event::{SessionEvent, TunnelKey};

/// Operations every microcloud backend provides.
///
/// Methods take `&mut self` because a backend owns its connection. To share a backend,
/// clone its handle: each clone is a connection to the same state.
pub trait Microcloud: Send + 'static {
    /// Applies session events in order: updates each subscriber's state and the tunnel
    /// index, then publishes the events to subscribers of the event channel.
    fn publish(
        &mut self,
        events: &[SessionEvent],
    ) -> impl Future<Output = Result<(), MicrocloudError>> + Send;

    /// Adds bucket deltas to the stored bucket totals.
    fn add_buckets(
        &mut self,
        deltas: &[BucketDelta],
    ) -> impl Future<Output = Result<(), MicrocloudError>> + Send;

    /// Returns a new id for [`Microcloud::add_buckets_as`], or `None` when the backend
    /// does not recognise repeated batches. The default returns `None`.
    fn new_batch_id(&self) -> Option<String> {
        None
    }

    /// Adds bucket deltas as the batch `batch_id`. A backend that returns ids from
    /// [`Microcloud::new_batch_id`] adds nothing for an id it applied before, so a caller
    /// may repeat a failed call with the same id and deltas without counting them twice.
    /// The default ignores the id and calls [`Microcloud::add_buckets`].
    fn add_buckets_as(
        &mut self,
        batch_id: Option<&str>,
        deltas: &[BucketDelta],
    ) -> impl Future<Output = Result<(), MicrocloudError>> + Send {
        let _ = batch_id;
        self.add_buckets(deltas)
    }

    /// Returns the IMSI that owns the tunnel `key`, if any.
    fn lookup_tunnel(
        &mut self,
        key: TunnelKey,
    ) -> impl Future<Output = Result<Option<String>, MicrocloudError>> + Send;

    /// Returns the IMSI that owns each tunnel of `keys`, in the same order. The Redis
    /// backend reads them in one round trip. The default calls
    /// [`Microcloud::lookup_tunnel`] for each key and stops at the first error.
    fn lookup_tunnels(
        &mut self,
        keys: &[TunnelKey],
    ) -> impl Future<Output = Result<Vec<Option<String>>, MicrocloudError>> + Send {
        async move {
            let mut owners = Vec::with_capacity(keys.len());
            for &key in keys {
                owners.push(self.lookup_tunnel(key).await?);
            }
            Ok(owners)
        }
    }

    /// Returns the state of subscriber `imsi`, if any event named it.
    fn subscriber(
        &mut self,
        imsi: &str,
    ) -> impl Future<Output = Result<Option<SubscriberState>, MicrocloudError>> + Send;

    /// Returns the start times (seconds since the epoch) of the stored buckets, ascending.
    fn bucket_epochs(&mut self) -> impl Future<Output = Result<Vec<u64>, MicrocloudError>> + Send;

    /// Returns the totals of every row of the bucket starting at `epoch`, sorted by IMSI
    /// then protocol; empty when the bucket is not stored.
    fn bucket_rows(
        &mut self,
        epoch: u64,
    ) -> impl Future<Output = Result<Vec<BucketDelta>, MicrocloudError>> + Send;
}
