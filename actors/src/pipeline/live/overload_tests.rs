//! Overload of a live capture: G-PDUs that find no free batch are dropped and counted,
//! and routing resumes once a consumer returns a batch.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::batch::BatchPool;
use crate::pipeline::control::ControlMsg;
use crate::pipeline::reader::ReadFrame;
use crate::pipeline::route::{Router, Targets, UserFields, GTPU_G_PDU};
use crate::pipeline::shard::ShardMsg;
use crate::wire::{Decoded, Decoder, GtpPdu, LinkType};

/// A consumer that keeps every message it receives and returns no batch, as a shard that
/// has fallen behind.
struct Stalled;

impl Actor for Stalled {
    type Msg = ShardMsg;
    type State = Vec<ShardMsg>;
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<ShardMsg>, _: ()) -> Result<Vec<ShardMsg>, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(&self, _myself: ActorRef<ShardMsg>, message: ShardMsg, kept: &mut Vec<ShardMsg>) -> Result<(), ActorProcessingErr> {
        kept.push(message);
        Ok(())
    }
}

/// A control consumer that keeps every message.
struct StalledControl;

impl Actor for StalledControl {
    type Msg = ControlMsg;
    type State = Vec<ControlMsg>;
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<ControlMsg>, _: ()) -> Result<Vec<ControlMsg>, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(&self, _myself: ActorRef<ControlMsg>, message: ControlMsg, kept: &mut Vec<ControlMsg>) -> Result<(), ActorProcessingErr> {
        kept.push(message);
        Ok(())
    }
}

/// Builds an Ethernet/IPv4/UDP frame to port 2152 carrying a G-PDU of TEID 7 whose T-PDU is an
/// IPv4/UDP packet without payload.
fn g_pdu_frame() -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]; // MACs, IPv4
    frame.extend_from_slice(&[0x45, 0, 0, 64, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]); // IPv4, 64 bytes
    frame.extend_from_slice(&[0x08, 0x68, 0x08, 0x68, 0, 44, 0, 0]); // UDP 2152 -> 2152, 44 bytes
    frame.extend_from_slice(&[0x30, 0xff, 0, 28, 0, 0, 0, 7]); // GTP-U G-PDU, length 28, TEID 7
    frame.extend_from_slice(&[0x45, 0, 0, 28, 0, 2, 0, 0, 64, 17, 0, 0, 10, 45, 0, 2, 192, 0, 2, 10]); // inner IPv4
    frame.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]); // inner UDP 40000 -> 53
    frame
}

/// Routes one G-PDU frame to shard 0.
fn route(router: &mut Router, bytes: &[u8]) {
    let mut decoder = Decoder::new();
    let decoded = decoder.decode(LinkType::Ethernet, 1, bytes);
    let Ok(Decoded::Gtp(gtp)) = decoded else { panic!("the test frame is not GTP: {decoded:?}") };
    let GtpPdu::User(user) = &gtp.pdu else { panic!("the test frame is not GTP-U") };
    let frame = ReadFrame { link: LinkType::Ethernet, ts_us: 1, orig_len: bytes.len() as u32, data: bytes };
    let fields = UserFields { payload: user.message, tpdu_offset: 8, message_type: GTPU_G_PDU, teid: user.teid, inner: None };
    router.seq += 1;
    router.route_user(0, &frame, &gtp, fields);
}

#[tokio::test]
async fn busy_shard_drops_and_counts() {
    let (shard, _) = Actor::spawn(None, Stalled, ()).await.unwrap();
    let (control, _) = Actor::spawn(None, StalledControl, ()).await.unwrap();
    let pool = BatchPool::new(1);
    let targets = Targets { control: control.clone(), shards: vec![shard.clone()] };
    let mut router = Router::new(targets, pool.clone(), 1);
    router.drop_user_when_busy = true;
    let bytes = g_pdu_frame();

    route(&mut router, &bytes);
    assert_eq!(router.user_dropped, 0, "the first frame takes the only batch");
    route(&mut router, &bytes);
    route(&mut router, &bytes);
    assert_eq!(router.user_dropped, 2, "no free batch: both frames dropped");
    assert_eq!(router.pool_waits, 0, "a dropped frame does not wait");

    pool.give_back(Default::default());
    route(&mut router, &bytes);
    assert_eq!(router.user_dropped, 2, "a returned batch takes the next frame");

    shard.stop(None);
    control.stop(None);
}
