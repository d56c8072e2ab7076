//! GTP-C message types the session table acts on (TS 29.060 §7.1 Table 1, TS 29.274 Table 6.1-1).

/// Echo Request (v1 and v2).
pub const ECHO_REQUEST: u8 = 1;
/// Echo Response (v1 and v2).
pub const ECHO_RESPONSE: u8 = 2;
/// GTPv1 Version Not Supported, GTPv2 Version Not Supported Indication.
pub const VERSION_NOT_SUPPORTED: u8 = 3;

/// GTPv1 Create PDP Context Request.
pub const V1_CREATE_PDP_REQUEST: u8 = 16;
/// GTPv1 Create PDP Context Response.
pub const V1_CREATE_PDP_RESPONSE: u8 = 17;
/// GTPv1 Update PDP Context Request.
pub const V1_UPDATE_PDP_REQUEST: u8 = 18;
/// GTPv1 Update PDP Context Response.
pub const V1_UPDATE_PDP_RESPONSE: u8 = 19;
/// GTPv1 Delete PDP Context Request.
pub const V1_DELETE_PDP_REQUEST: u8 = 20;
/// GTPv1 Delete PDP Context Response.
pub const V1_DELETE_PDP_RESPONSE: u8 = 21;

/// GTPv2 Create Session Request.
pub const V2_CREATE_SESSION_REQUEST: u8 = 32;
/// GTPv2 Create Session Response.
pub const V2_CREATE_SESSION_RESPONSE: u8 = 33;
/// GTPv2 Modify Bearer Request.
pub const V2_MODIFY_BEARER_REQUEST: u8 = 34;
/// GTPv2 Modify Bearer Response.
pub const V2_MODIFY_BEARER_RESPONSE: u8 = 35;
/// GTPv2 Delete Session Request.
pub const V2_DELETE_SESSION_REQUEST: u8 = 36;
/// GTPv2 Delete Session Response.
pub const V2_DELETE_SESSION_RESPONSE: u8 = 37;
/// GTPv2 Create Bearer Request.
pub const V2_CREATE_BEARER_REQUEST: u8 = 95;
/// GTPv2 Create Bearer Response.
pub const V2_CREATE_BEARER_RESPONSE: u8 = 96;
/// GTPv2 Update Bearer Request.
pub const V2_UPDATE_BEARER_REQUEST: u8 = 97;
/// GTPv2 Update Bearer Response.
pub const V2_UPDATE_BEARER_RESPONSE: u8 = 98;
/// GTPv2 Delete Bearer Request.
pub const V2_DELETE_BEARER_REQUEST: u8 = 99;
/// GTPv2 Delete Bearer Response.
pub const V2_DELETE_BEARER_RESPONSE: u8 = 100;
/// GTPv2 Create Indirect Data Forwarding Tunnel Request.
pub const V2_CREATE_FORWARDING_REQUEST: u8 = 166;
/// GTPv2 Create Indirect Data Forwarding Tunnel Response.
pub const V2_CREATE_FORWARDING_RESPONSE: u8 = 167;
/// GTPv2 Delete Indirect Data Forwarding Tunnel Request.
pub const V2_DELETE_FORWARDING_REQUEST: u8 = 168;
/// GTPv2 Delete Indirect Data Forwarding Tunnel Response.
pub const V2_DELETE_FORWARDING_RESPONSE: u8 = 169;
/// GTPv2 Release Access Bearers Request.
pub const V2_RELEASE_ACCESS_BEARERS_REQUEST: u8 = 170;
/// GTPv2 Release Access Bearers Response.
pub const V2_RELEASE_ACCESS_BEARERS_RESPONSE: u8 = 171;
/// GTPv2 Downlink Data Notification.
pub const V2_DOWNLINK_DATA_NOTIFICATION: u8 = 176;
/// GTPv2 Downlink Data Notification Acknowledge.
pub const V2_DOWNLINK_DATA_NOTIFICATION_ACK: u8 = 177;
/// GTPv2 Modify Access Bearers Request.
pub const V2_MODIFY_ACCESS_BEARERS_REQUEST: u8 = 211;
/// GTPv2 Modify Access Bearers Response.
pub const V2_MODIFY_ACCESS_BEARERS_RESPONSE: u8 = 212;

/// True for messages that answer a request, so they are paired with it by sequence number.
/// GTPv1: TS 29.060 Table 1; GTPv2: TS 29.274 Table 6.1-1 (responses, acknowledges, and the
/// failure indications that answer a command).
pub fn is_response(version: crate::wire::control::GtpVersion, message_type: u8) -> bool {
    use crate::wire::control::GtpVersion::*;
    match version {
        V1 => matches!(message_type, 2 | 17 | 19 | 21 | 23 | 28 | 30 | 33 | 35 | 37 | 49 | 51 | 54 | 57 | 59 | 60),
        V2 => matches!(
            message_type,
            2 | 33 | 35 | 37 | 39 | 41 | 65 | 67 | 69 | 70 | 96 | 98 | 100 | 102 | 104 | 129 | 131 | 134 | 136 | 138 | 140
                | 150 | 154 | 156 | 159 | 161 | 163 | 165 | 167 | 169 | 171 | 177 | 179 | 201 | 212 | 232 | 234 | 236
        ),
    }
}
