//! Forwards the node events of ractor_cluster's `NodeServer` to the membership actor.

use ractor::ActorRef;
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::NodeEventSubscription;

use super::membership::MembershipMessage;

/// The subscription that casts each node event to the membership actor. The callbacks run
/// inside the `NodeServer` actor, so they only send a message.
pub struct EventForwarder {
    /// The membership actor.
    pub membership: ActorRef<MembershipMessage>,
}

impl EventForwarder {
    fn forward(&self, message: MembershipMessage) {
        if let Err(error) = self.membership.cast(message) {
            tracing::debug!(%error, "the membership actor stopped; node event dropped");
        }
    }
}

impl NodeEventSubscription for EventForwarder {
    fn node_session_opened(&self, session: NodeServerSessionInformation) {
        self.forward(MembershipMessage::SessionOpened(session));
    }

    fn node_session_disconnected(&self, session: NodeServerSessionInformation) {
        self.forward(MembershipMessage::SessionClosed(session));
    }

    fn node_session_authenticated(&self, session: NodeServerSessionInformation) {
        self.forward(MembershipMessage::SessionAuthenticated(session));
    }

    fn node_session_ready(&self, session: NodeServerSessionInformation) {
        self.forward(MembershipMessage::SessionReady(session));
    }
}
