//! Session table tests on decoded messages built field by field.

use std::net::{IpAddr, Ipv4Addr};

use arrayvec::ArrayVec;

use crate::session::event::{EventKind, SessionEvent, TunnelRole};
use crate::session::message_type as mt;
use crate::session::table::{Attribution, MessageContext, SessionConfig, SessionTable};
use crate::wire::control::{BearerContext, ControlMessage, Digits, Fteid, FteidInterface, GtpVersion, UeAddress};

const MME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 30, 0, 1));
const SGW: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 40, 0, 1));
const SGW_U: Ipv4Addr = Ipv4Addr::new(10, 40, 0, 2);
const ENB1: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 1);
const ENB2: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 2);
const SGSN: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 10, 0, 1));
const GGSN: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 20, 0, 1));

fn imsi(text: &str) -> Digits {
    Digits::from_ascii(text.as_bytes()).unwrap()
}

fn fteid(interface: FteidInterface, instance: u8, teid: u32, addr: Ipv4Addr) -> Fteid {
    Fteid { instance, interface, teid, ipv4: Some(addr), ipv6: None }
}

fn bearer(ebi: u8, fteids: &[Fteid]) -> BearerContext {
    BearerContext { ebi: Some(ebi), fteids: fteids.iter().copied().collect(), ..BearerContext::default() }
}

fn v2(message_type: u8, teid: u32, sequence: u32) -> ControlMessage<'static> {
    ControlMessage { version: Some(GtpVersion::V2), message_type, teid: Some(teid), sequence, ..ControlMessage::default() }
}

/// Feeds messages to a table in order; each is (message, src, dst, ts in seconds).
struct Feed {
    table: SessionTable,
    events: Vec<SessionEvent>,
    seq: u64,
}

impl Feed {
    fn new() -> Feed {
        Feed { table: SessionTable::new(SessionConfig::default()), events: Vec::new(), seq: 0 }
    }

    fn send(&mut self, msg: &ControlMessage<'_>, src: IpAddr, dst: IpAddr, ts_s: u64) -> Attribution {
        self.seq += 1;
        let ctx = MessageContext { seq: self.seq, ts_us: ts_s * 1_000_000, src, dst };
        self.table.handle(msg, ctx, &mut self.events)
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.events.iter().map(|e| e.kind).collect()
    }
}

fn create_session(feed: &mut Feed, sequence: u32, cause: u8, mme_teid: u32, sgw_teid: u32, sgw_u_teid: u32) {
    let mut request = v2(mt::V2_CREATE_SESSION_REQUEST, 0, sequence);
    request.imsi = Some(imsi("001010123456789"));
    request.fteids.push(fteid(FteidInterface::S11Mme, 0, mme_teid, Ipv4Addr::new(10, 30, 0, 1)));
    request.bearers.push(bearer(5, &[]));
    feed.send(&request, MME, SGW, 1);
    let mut response = v2(mt::V2_CREATE_SESSION_RESPONSE, mme_teid, sequence);
    response.cause = Some(cause);
    response.fteids.push(fteid(FteidInterface::S11S4Sgw, 0, sgw_teid, Ipv4Addr::new(10, 40, 0, 1)));
    response.ue_address = Some(UeAddress { ipv4: Some(Ipv4Addr::new(100, 64, 0, 1)), ipv6: None, present: true });
    response.bearers.push(bearer(5, &[fteid(FteidInterface::S1uSgw, 0, sgw_u_teid, SGW_U)]));
    feed.send(&response, SGW, MME, 1);
}

fn modify_bearer(feed: &mut Feed, sequence: u32, sgw_teid: u32, enb: Ipv4Addr, enb_teid: u32, ts_s: u64) {
    let mut request = v2(mt::V2_MODIFY_BEARER_REQUEST, sgw_teid, sequence);
    request.bearers.push(bearer(5, &[fteid(FteidInterface::S1uEnodeb, 0, enb_teid, enb)]));
    feed.send(&request, MME, SGW, ts_s);
    let mut response = v2(mt::V2_MODIFY_BEARER_RESPONSE, 0x100, sequence);
    response.cause = Some(16);
    feed.send(&response, SGW, MME, ts_s);
}

#[test]
fn create_session_installs_bearer_fteid() {
    let mut feed = Feed::new();
    create_session(&mut feed, 1, 16, 0x100, 0x200, 0x300);
    assert_eq!(feed.kinds(), [EventKind::Attach]);
    let attach = &feed.events[0];
    assert_eq!(attach.imsi, "001010123456789");
    assert_eq!(attach.ue_ipv4, Some(Ipv4Addr::new(100, 64, 0, 1)));
    assert_eq!(attach.added.len(), 1);
    assert_eq!(attach.added[0].key.teid, 0x300);
    assert_eq!(attach.added[0].key.addr, IpAddr::V4(SGW_U));
    assert_eq!(attach.added[0].role, TunnelRole::Uplink);
}

#[test]
fn rejected_create_attributed_without_session() {
    let mut feed = Feed::new();
    create_session(&mut feed, 1, 73, 0x100, 0x200, 0x300);
    assert_eq!(feed.kinds(), [EventKind::Reject]);
    assert_eq!(feed.table.session_count(), 0);
    assert!(feed.events[0].tunnels.is_empty());
}

#[test]
fn response_from_other_port_still_paired() {
    // Pairing uses the peer addresses and the sequence number only. UDP ports are not part of
    // the message context, so a response from an ephemeral port pairs like any other.
    let mut feed = Feed::new();
    create_session(&mut feed, 7, 16, 0x100, 0x200, 0x300);
    assert_eq!(feed.table.stats().responses_paired, 1);
}

#[test]
fn response_between_other_peers_not_paired() {
    let mut feed = Feed::new();
    let mut request = v2(mt::V2_CREATE_SESSION_REQUEST, 0, 9);
    request.imsi = Some(imsi("001010123456789"));
    feed.send(&request, MME, SGW, 1);
    let mut response = v2(mt::V2_CREATE_SESSION_RESPONSE, 0x100, 9);
    response.cause = Some(16);
    let other = IpAddr::V4(Ipv4Addr::new(10, 40, 0, 99));
    assert_eq!(feed.send(&response, other, MME, 1), Attribution::UnknownSession);
    assert_eq!(feed.table.stats().responses_unpaired, 1);
}

#[test]
fn modify_bearer_then_handover_moves_downlink() {
    let mut feed = Feed::new();
    create_session(&mut feed, 1, 16, 0x100, 0x200, 0x300);
    modify_bearer(&mut feed, 2, 0x200, ENB1, 0x400, 2);
    modify_bearer(&mut feed, 3, 0x200, ENB2, 0x500, 3);
    assert_eq!(feed.kinds(), [EventKind::Attach, EventKind::Modify, EventKind::Move]);
    let moved = &feed.events[2];
    assert_eq!(moved.removed.len(), 1);
    assert_eq!(moved.removed[0].key.teid, 0x400);
    assert_eq!(moved.added[0].key.addr, IpAddr::V4(ENB2));
    assert_eq!(moved.tunnels.len(), 2, "uplink kept, one downlink");
}

#[test]
fn rejected_modify_changes_nothing() {
    let mut feed = Feed::new();
    create_session(&mut feed, 1, 16, 0x100, 0x200, 0x300);
    let mut request = v2(mt::V2_MODIFY_BEARER_REQUEST, 0x200, 2);
    request.bearers.push(bearer(5, &[fteid(FteidInterface::S1uEnodeb, 0, 0x400, ENB1)]));
    feed.send(&request, MME, SGW, 2);
    let mut response = v2(mt::V2_MODIFY_BEARER_RESPONSE, 0x100, 2);
    response.cause = Some(64);
    let attribution = feed.send(&response, SGW, MME, 2);
    assert_eq!(attribution, Attribution::Subscriber(imsi("001010123456789")));
    assert_eq!(feed.kinds(), [EventKind::Attach]);
}

#[test]
fn release_access_bearers_idles_session() {
    let mut feed = Feed::new();
    create_session(&mut feed, 1, 16, 0x100, 0x200, 0x300);
    modify_bearer(&mut feed, 2, 0x200, ENB1, 0x400, 2);
    feed.send(&v2(mt::V2_RELEASE_ACCESS_BEARERS_REQUEST, 0x200, 3), MME, SGW, 3);
    let mut response = v2(mt::V2_RELEASE_ACCESS_BEARERS_RESPONSE, 0x100, 3);
    response.cause = Some(16);
    feed.send(&response, SGW, MME, 3);
    let idle = feed.events.last().unwrap();
    assert_eq!(idle.kind, EventKind::Idle);
    assert_eq!(idle.removed.len(), 1);
    assert_eq!(idle.removed[0].role, TunnelRole::Downlink);
    assert_eq!(feed.table.session_count(), 1);
}

#[test]
fn delete_session_detaches_and_forgets_control_teid() {
    let mut feed = Feed::new();
    create_session(&mut feed, 1, 16, 0x100, 0x200, 0x300);
    let mut request = v2(mt::V2_DELETE_SESSION_REQUEST, 0x200, 2);
    request.ebi = Some(5);
    feed.send(&request, MME, SGW, 4);
    let mut response = v2(mt::V2_DELETE_SESSION_RESPONSE, 0x100, 2);
    response.cause = Some(16);
    feed.send(&response, SGW, MME, 4);
    assert_eq!(feed.kinds(), [EventKind::Attach, EventKind::Detach]);
    assert_ne!(feed.events[0].session_id, 0, "attach names its session");
    assert_eq!(feed.events[1].session_id, feed.events[0].session_id, "detach names the same session");
    assert_eq!(feed.events[1].removed.len(), 1);
    assert_eq!(feed.table.session_count(), 0);
    // A later message on the old control TEID belongs to no session.
    assert_eq!(feed.send(&v2(mt::V2_MODIFY_BEARER_REQUEST, 0x200, 3), MME, SGW, 5), Attribution::UnknownSession);
}

#[test]
fn teid_reuse_by_new_subscriber() {
    let mut feed = Feed::new();
    create_session(&mut feed, 1, 16, 0x100, 0x200, 0x300);
    let mut request = v2(mt::V2_DELETE_SESSION_REQUEST, 0x200, 2);
    request.ebi = Some(5);
    feed.send(&request, MME, SGW, 4);
    let mut response = v2(mt::V2_DELETE_SESSION_RESPONSE, 0x100, 2);
    response.cause = Some(16);
    feed.send(&response, SGW, MME, 4);
    let mut again = v2(mt::V2_CREATE_SESSION_REQUEST, 0, 3);
    again.imsi = Some(imsi("001010999999999"));
    again.fteids.push(fteid(FteidInterface::S11Mme, 0, 0x101, Ipv4Addr::new(10, 30, 0, 1)));
    feed.send(&again, MME, SGW, 10);
    let mut response = v2(mt::V2_CREATE_SESSION_RESPONSE, 0x101, 3);
    response.cause = Some(16);
    response.fteids.push(fteid(FteidInterface::S11S4Sgw, 0, 0x200, Ipv4Addr::new(10, 40, 0, 1)));
    response.bearers.push(bearer(5, &[fteid(FteidInterface::S1uSgw, 0, 0x300, SGW_U)]));
    feed.send(&response, SGW, MME, 10);
    let attach = feed.events.last().unwrap();
    assert_eq!(attach.imsi, "001010999999999");
    assert_eq!(attach.added[0].key.teid, 0x300);
    let next = v2(mt::V2_MODIFY_BEARER_REQUEST, 0x200, 4);
    assert_eq!(feed.send(&next, MME, SGW, 11), Attribution::Subscriber(imsi("001010999999999")));
}

#[test]
fn gtpv1_create_update_delete() {
    let mut feed = Feed::new();
    let v1 = |message_type, teid, sequence| ControlMessage {
        version: Some(GtpVersion::V1),
        message_type,
        teid: Some(teid),
        sequence,
        ..ControlMessage::default()
    };
    let mut create = v1(mt::V1_CREATE_PDP_REQUEST, 0, 1);
    create.imsi = Some(imsi("262011234567890"));
    create.teid_data_i = Some(0x11);
    create.teid_control = Some(0x12);
    create.nsapi = Some(5);
    create.gsn_addresses = [SGSN, SGSN].into_iter().collect::<ArrayVec<_, 4>>();
    feed.send(&create, SGSN, GGSN, 1);
    let mut response = v1(mt::V1_CREATE_PDP_RESPONSE, 0x12, 1);
    response.cause = Some(128);
    response.teid_data_i = Some(0x21);
    response.teid_control = Some(0x22);
    response.gsn_addresses = [GGSN, GGSN].into_iter().collect::<ArrayVec<_, 4>>();
    feed.send(&response, GGSN, SGSN, 1);
    let new_sgsn = IpAddr::V4(Ipv4Addr::new(10, 10, 0, 2));
    let mut update = v1(mt::V1_UPDATE_PDP_REQUEST, 0x22, 2);
    update.teid_data_i = Some(0x31);
    update.teid_control = Some(0x32);
    update.nsapi = Some(5);
    update.gsn_addresses = [new_sgsn, new_sgsn].into_iter().collect::<ArrayVec<_, 4>>();
    feed.send(&update, new_sgsn, GGSN, 2);
    let mut updated = v1(mt::V1_UPDATE_PDP_RESPONSE, 0x32, 2);
    updated.cause = Some(128);
    feed.send(&updated, GGSN, new_sgsn, 2);
    let mut delete = v1(mt::V1_DELETE_PDP_REQUEST, 0x22, 3);
    delete.nsapi = Some(5);
    delete.teardown = true;
    feed.send(&delete, new_sgsn, GGSN, 3);
    let mut deleted = v1(mt::V1_DELETE_PDP_RESPONSE, 0x32, 3);
    deleted.cause = Some(128);
    feed.send(&deleted, GGSN, new_sgsn, 3);
    assert_eq!(feed.kinds(), [EventKind::Attach, EventKind::Move, EventKind::Detach]);
    let moved = &feed.events[1];
    assert_eq!(moved.added[0].key, crate::session::TunnelKey { addr: new_sgsn, teid: 0x31 });
    assert_eq!(moved.removed[0].key.teid, 0x11);
}

#[test]
fn delete_bearer_removes_every_listed_ebi() {
    let mut feed = Feed::new();
    create_session(&mut feed, 1, 16, 0x100, 0x200, 0x300);
    for (sequence, ebi, teid) in [(2, 6, 0x610), (3, 7, 0x710)] {
        let mut request = v2(mt::V2_CREATE_BEARER_REQUEST, 0x100, sequence);
        request.bearers.push(BearerContext { ebi: None, ..bearer(0, &[fteid(FteidInterface::S1uSgw, 0, teid, SGW_U)]) });
        feed.send(&request, SGW, MME, 2);
        let mut response = v2(mt::V2_CREATE_BEARER_RESPONSE, 0x200, sequence);
        response.cause = Some(16);
        response.bearers.push(BearerContext { cause: Some(16), ..bearer(ebi, &[fteid(FteidInterface::S1uEnodeb, 0, teid + 1, ENB1)]) });
        feed.send(&response, MME, SGW, 2);
    }
    assert_eq!(feed.events.last().unwrap().tunnels.len(), 5, "default uplink and two bearers of two tunnels");
    let mut request = v2(mt::V2_DELETE_BEARER_REQUEST, 0x100, 4);
    request.ebi = Some(6);
    request.ebis.push(6);
    request.ebis.push(7);
    feed.send(&request, SGW, MME, 3);
    let mut response = v2(mt::V2_DELETE_BEARER_RESPONSE, 0x200, 4);
    response.cause = Some(16);
    feed.send(&response, MME, SGW, 3);
    let deleted = feed.events.last().unwrap();
    assert_eq!(deleted.kind, EventKind::Modify);
    assert_eq!(deleted.removed.len(), 4, "both dedicated bearers' tunnels");
    assert_eq!(deleted.tunnels.len(), 1, "the default bearer's uplink stays");
}
